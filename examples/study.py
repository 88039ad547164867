"""
Title: The tutorial's thesis measured: LSTM variants on long-lag tasks
Description: Shows the vanishing gradient of a plain RNN next to the
    constant error flow of the LSTM's cell state, then trains `SimpleRNN`,
    the GRU and the LSTM variants on the long-lag tasks where the originals
    were proven (the adding problem and the temporal order task of
    Hochreiter & Schmidhuber 1997, a spike-timing task after Gers et al.
    2002), over several seeds, Greff-style.
Result: see "The study: long-lag tasks" in the README for a measured run
    and its comparison with the papers' numbers.
Needs: its helper modules `_common.py`, `long_lag_tasks.py`,
    `study_gradients.py` and `study_report.py` from the same directory: run
    it as a file, `python examples/study.py --quick`, with the `examples`
    extra installed.

What it does:

* Data: every sequence is generated in code (`long_lag_tasks.py`), a fresh
  batch for every training step, as the papers trained online; each task has
  one fixed set of 2560 test sequences (its own seed, the same for every run)
  and a validation batch for the stopping rule.
* Models: one recurrent layer (`--units`) and a read-out: linear for the
  adding and timing tasks, sigmoid units for the four temporal-order classes.
  Variants: `simple_rnn` (`keras.layers.SimpleRNN`), `gru`, `standard`
  (`StandardLSTM`, no peepholes: Greff's NP), `peephole` (`PeepholeLSTM`, all
  three peepholes: Greff's vanilla), `coupled` (`CoupledLSTM`, CIFG without
  peepholes) and `LSTMVariant` by Greff's names (`NFG`, `NOAF`; the full mode
  adds `NIG`, `NOG`, `NIAF`, `CIFG`, `FGR`).
* Training: Adam (learning rate 1e-2) with gradient clipping (`clipnorm=1`),
  at most the mode's number of updates of `--batch-size` sequences (`--steps`
  sets it for every task); every `--eval-every` updates the run
  is checked on a validation batch and stops as soon as it gets all of it
  right (the paper also stopped on a criterion); then the 2560 test
  sequences are counted, as in the paper's Tables 7 and 8.
* Gradients: the norms of dL/dx_{T-k} and (LSTMs) dL/dc_{T-k} against the
  lag k, at initialization and after training on the adding problem
  (`study_gradients.py`).
* Output (`--out`): `study_gradients.png`, `study_boxplot.png`,
  `study_results.md` (the tables) and `study_results.json` (every number).
  TensorBoard (`--logdir`): `<logdir>/study/<mode>-<time>/gradients/{init,
  trained}` (Scalars, `dL_dx/<model>`, `dL_dc/<model>` with the lag as the
  step; tick "Log scale" for the y axis) and `.../hparams/<task>/<variant>/
  seed<k>` (the **HParams** tab: variant, task and seed as hyperparameters,
  the test error and wrong-of-2560 as metrics; sort and filter there).

    python examples/study.py --quick          # make study: a few minutes
    python examples/study.py --mode full      # hours: see the README
"""

import dataclasses
import datetime
import sys
import time
from pathlib import Path

import _common  # first: picks the TensorFlow backend before Keras loads
import keras
import long_lag_tasks as tasks
import numpy as np
import study_gradients
import study_report
import tensorflow as tf

import keras_lstm_variants as klv

PROG = "study"
# Every run builds a new model, so Keras traces its steps anew: expected here.
tf.get_logger().setLevel("ERROR")

#: Every model the study knows: name -> function of `units` giving the layer.
VARIANTS = {
    "simple_rnn": lambda units: keras.layers.SimpleRNN(units),
    "gru": lambda units: klv.GRU(units),
    "standard": lambda units: klv.StandardLSTM(units),
    "peephole": lambda units: klv.PeepholeLSTM(units),
    "coupled": lambda units: klv.CoupledLSTM(units),
    **{
        name: (lambda units, name=name: klv.LSTMVariant(units, variant=name))
        for name in ("NFG", "NOAF", "NIG", "NOG", "NIAF", "CIFG", "FGR")
    },
}


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of the study: how to draw it, judge it and read it out."""

    name: str
    draw: object  # (rng, n) -> TaskBatch
    wrong: object  # (outputs, targets) -> int
    outputs: int
    masked: bool  # zero-padded at the start, read through Masking(0.0)
    read_out: str = "linear"
    loss: str = "mse"


def adding_task(T):
    return Task(
        f"adding_T{T}",
        lambda rng, n: tasks.adding_problem(rng, n, T),
        tasks.wrong_adding,
        outputs=1,
        masked=True,
    )


TEMPORAL_ORDER = Task(
    "temporal_order",
    tasks.temporal_order,
    tasks.wrong_temporal_order,
    outputs=4,
    masked=True,
    read_out="sigmoid",
    loss="binary_crossentropy",
)

SPIKE_DELAY = Task(
    "spike_delay",
    tasks.spike_delay,
    tasks.wrong_spike_delay,
    outputs=1,
    masked=False,
)


@dataclasses.dataclass
class Mode:
    """The size of a run: what `--mode` chooses (flags override)."""

    adding_T: tuple
    variants: tuple
    seeds: int
    steps: int  # max updates of a run on the adding problem
    steps_other: int  # max updates on the temporal order and timing tasks
    timing_seeds: int
    units: int = 32
    batch_size: int = 128
    learning_rate: float = 1e-2
    eval_every: int = 100
    eval_batch: int = 512  # divides the 2560 test sequences
    gradient_sequences: int = 256
    forget_bias: float = None  # None: Keras's unit_forget_bias (1.0)


QUICK_VARIANTS = ("simple_rnn", "gru", "standard", "peephole", "coupled", "NFG", "NOAF")
MODES = {
    "toy": Mode((20,), ("simple_rnn", "standard", "peephole"), 1, 4, 4, 2, units=4,
                batch_size=16, eval_every=2, eval_batch=64, gradient_sequences=8),
    "quick": Mode((100,), QUICK_VARIANTS, 3, 200, 200, 3),
    "medium": Mode((100,), QUICK_VARIANTS, 3, 1200, 800, 5),
    "full": Mode((100, 500, 1000),
                 (*QUICK_VARIANTS, "NIG", "NOG", "NIAF", "CIFG", "FGR"),
                 5, 20000, 5000, 10),
}  # fmt: skip


def build_model(variant, task, units, features, seed, forget_bias=None):
    """The recurrent layer and its read-out, seeded.

    With `forget_bias`, an LSTM's forget-gate biases start at that value
    instead of Keras's 1.0 (a cell without a forget gate is left alone).
    """
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((None, features))]
    if task.masked:
        layers.append(keras.layers.Masking(0.0))
    layers.append(VARIANTS[variant](units))
    layers.append(keras.layers.Dense(task.outputs, activation=task.read_out))
    model = keras.Sequential(layers, name=f"{task.name}_{variant}")
    layer = model.layers[-2]
    has_forget = study_gradients.has_cell_state(layer) and (
        "forget" in layer.cell.step.blocks
    )
    if forget_bias is not None and has_forget:
        bias = keras.ops.convert_to_numpy(layer.cell.bias)
        k = layer.cell.step.blocks.index("forget")
        bias[k * units : (k + 1) * units] = forget_bias
        layer.cell.bias.assign(bias)
    return model


def test_set(task):
    """The task's 2560 test sequences: one fixed draw, the same for every run."""
    return task.draw(np.random.default_rng([7, 2560]), tasks.TEST_SEQUENCES)


def train_run(task, variant, seed, mode, log_dir, test):
    """Trains one model; returns `(result dict, model)`.

    Data: a fresh batch per update from `rng([seed, 1])`; the validation batch
    of the stopping rule from `rng([seed, 2])`; weights from `seed`.
    """
    rng = np.random.default_rng([seed, 1])
    validation = task.draw(np.random.default_rng([seed, 2]), mode.eval_batch)
    features = test.inputs.shape[-1]
    model = build_model(variant, task, mode.units, features, seed, mode.forget_bias)
    budget = mode.steps if task.name.startswith("adding") else mode.steps_other
    model.compile(
        keras.optimizers.Adam(mode.learning_rate, clipnorm=1.0), loss=task.loss
    )
    log = study_report.RunLog(log_dir, variant, task.name, seed)
    start, step, losses = time.perf_counter(), 0, []
    while step < budget:
        batch = task.draw(rng, mode.batch_size)
        losses.append(float(model.train_on_batch(batch.inputs, batch.targets)))
        step += 1
        if step % mode.eval_every == 0 or step == budget:
            log.loss(step, float(np.mean(losses)))
            losses = []
            predicted = model.predict_on_batch(validation.inputs)
            if task.wrong(predicted, validation.targets) == 0:
                break
    # Batches of the validation's shape: no new trace of the predict step.
    outputs = np.concatenate(
        [
            model.predict_on_batch(test.inputs[i : i + mode.eval_batch])
            for i in range(0, len(test.inputs), mode.eval_batch)
        ]
    )
    error = float(np.mean((outputs - test.targets) ** 2))
    wrong = task.wrong(outputs, test.targets)
    log.close(step, error, wrong)
    result = {
        "task": task.name,
        "variant": variant,
        "seed": seed,
        "test_error": error,
        "wrong": wrong,
        "updates": step,
        "sequences": step * mode.batch_size,
        "seconds": time.perf_counter() - start,
    }
    return result, model


def measure_gradients(variants, trained, mode, T):
    """`{phase: {variant: (dx, dc)}}` at initialization and after training."""
    task = adding_task(T)
    probe = tasks.adding_problem(
        np.random.default_rng([7, 1]), mode.gradient_sequences, T, fixed_length=True
    )
    curves = {"init": {}, "trained": {}}
    for variant in variants:
        fresh = build_model(variant, task, mode.units, 2, 0, mode.forget_bias)
        for phase, model in (("init", fresh), ("trained", trained[variant])):
            layer, read_out = model.layers[-2], model.layers[-1]
            curves[phase][variant] = study_gradients.gradient_norms(
                layer, read_out, probe.inputs, probe.targets
            )
    return curves


def parse_args(argv):
    parser = _common.make_parser(PROG, __doc__)
    parser.add_argument(
        "--mode",
        default="quick",
        choices=sorted(MODES),
        help="size: toy (the tests), quick (make study), medium, full",
    )
    parser.add_argument(
        "--quick", action="store_true", help="the same as --mode quick (make study)"
    )
    parser.add_argument("--full", action="store_true", help="the same as --mode full")
    parser.add_argument(
        "--variants",
        help="comma-separated subset of "
        + ", ".join(VARIANTS)
        + " (default: the mode's)",
    )
    parser.add_argument("--seeds", type=_common.positive_int, help="seeds per variant")
    parser.add_argument(
        "--steps", type=_common.positive_int, help="max updates per run, every task"
    )
    parser.add_argument("--units", type=_common.positive_int, help="units per layer")
    parser.add_argument(
        "--batch-size", type=_common.positive_int, help="sequences per update"
    )
    parser.add_argument(
        "--eval-every",
        type=_common.positive_int,
        help="updates between the checks of the stopping rule",
    )
    parser.add_argument(
        "--forget-bias",
        type=float,
        help="initial forget-gate bias of the LSTMs (default: Keras's 1.0)",
    )
    parser.add_argument("--logdir", default="runs", help="TensorBoard root")
    parser.add_argument("--out", default="artifacts", help="PNGs and tables")
    args = parser.parse_args(argv)
    if args.quick and args.full:
        parser.error("--quick and --full exclude each other")
    name = "full" if args.full else "quick" if args.quick else args.mode
    mode = dataclasses.replace(MODES[name])
    for flag in ("seeds", "steps", "units", "batch_size", "eval_every", "forget_bias"):
        if getattr(args, flag) is not None:
            setattr(mode, flag, getattr(args, flag))
    if args.steps is not None:
        mode.steps_other = args.steps
    if args.variants:
        chosen = tuple(v.strip() for v in args.variants.split(","))
        unknown = [v for v in chosen if v not in VARIANTS]
        if unknown:
            parser.error(
                f"--variants: unknown {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(VARIANTS)}"
            )
        mode.variants = chosen
    return args, name, mode


def run(argv=None):
    """Runs the study; returns its `_common.Summary` and the results dict."""
    args, name, mode = parse_args(argv)
    out_dir = _common.prepare_out_dir(args.out)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(args.logdir) / "study" / f"{name}-{stamp}"
    hparams_root = root / "hparams"
    comparison = [*(adding_task(T) for T in mode.adding_T), TEMPORAL_ORDER]
    timing_variants = tuple(v for v in ("standard", "peephole") if v in mode.variants)
    all_tasks = [t.name for t in comparison] + [SPIKE_DELAY.name]
    seeds = list(range(max(mode.seeds, mode.timing_seeds)))
    study_report.write_hparams_config(hparams_root, mode.variants, all_tasks, seeds)
    start = time.perf_counter()

    _common.print_section(f"Comparison ({name} mode: {mode})")
    results, trained = [], {}
    plan = [
        (task, v, s)
        for task in comparison
        for s in range(mode.seeds)
        for v in mode.variants
    ]
    # The timing task: every variant over the comparison's seeds, and the
    # peephole question (standard against peephole) over more seeds.
    plan += [
        (SPIKE_DELAY, v, s)
        for s in range(max(mode.seeds, mode.timing_seeds))
        for v in mode.variants
        if s < mode.seeds or v in timing_variants
    ]
    test_sets = {}
    for task, variant, seed in plan:
        if task.name not in test_sets:
            test_sets[task.name] = test_set(task)
        log_dir = hparams_root / task.name / variant / f"seed{seed}"
        result, model = train_run(
            task, variant, seed, mode, log_dir, test_sets[task.name]
        )
        results.append(result)
        print(
            f"{task.name:16s} {variant:10s} seed {seed}: {result['wrong']:4d} wrong of "
            f"2560, test MSE {result['test_error']:.2e}, {result['updates']} updates, "
            f"{result['seconds']:.0f} s",
            flush=True,
        )
        if task is comparison[0] and seed == 0:
            trained[variant] = model
        keras.utils.clear_session(free_memory=False)

    _common.print_section("Gradients against the lag")
    T = mode.adding_T[0]
    curves = study_gradients_for(mode, trained, T)
    study_report.log_gradient_curves(root / "gradients", curves)
    lags = [k for k in (1, 2, 5, 10, 20, 50, T - 1) if k < T]
    gradient_md = study_report.gradient_table(curves, lags)
    print(gradient_md)

    _common.print_section("Results")
    task_names = all_tasks
    rows = study_report.comparison_rows(results, task_names, mode.variants)
    table = study_report.markdown_table(rows)
    timing = timing_rows(results, timing_variants)
    print(table)
    print()
    print(timing)
    seconds = time.perf_counter() - start
    files = write_outputs(
        out_dir,
        name,
        mode,
        curves,
        results,
        rows,
        table,
        timing,
        gradient_md,
        seconds,
        task_names,
        T,
    )
    title = f"study ({name} mode): {len(results)} runs in {seconds / 60:.1f} min"
    summary = _common.Summary(title, files, args.logdir)
    return summary, {
        "results": results,
        "rows": rows,
        "curves": curves,
        "seconds": seconds,
        "log_root": root,
    }


def study_gradients_for(mode, trained, T):
    return measure_gradients(
        [v for v in mode.variants if v in trained], trained, mode, T
    )


def timing_rows(results, variants):
    """Markdown: the spike-delay task, success (0 wrong of 2560) over seeds."""
    lines = [
        "| variant | seeds solved (0 wrong of 2560) | wrong per seed |",
        "| --- | ---: | --- |",
    ]
    for variant in variants:
        wrong = [
            r["wrong"]
            for r in results
            if r["task"] == SPIKE_DELAY.name and r["variant"] == variant
        ]
        lines.append(
            f"| {variant} | {sum(w == 0 for w in wrong)} of {len(wrong)} | "
            f"{', '.join(map(str, wrong))} |"
        )
    return "\n".join(lines)


def write_outputs(
    out_dir,
    name,
    mode,
    curves,
    results,
    rows,
    table,
    timing,
    gradient_md,
    seconds,
    task_names,
    T,
):
    gradients_png = out_dir / "study_gradients.png"
    boxplot_png = out_dir / "study_boxplot.png"
    study_report.plot_gradients(gradients_png, curves, T)
    study_report.plot_boxes(boxplot_png, results, task_names, mode.variants)
    markdown = out_dir / "study_results.md"
    markdown.write_text(
        f"# Study, {name} mode ({seconds / 60:.1f} min)\n\n"
        f"Settings: {mode}\n\n## Comparison\n\n{table}\n\n"
        f"## Peepholes and timing (spike delay)\n\n{timing}\n\n"
        f"## Gradient norms (adding problem, T = {T})\n\n{gradient_md}\n"
    )
    payload = {
        "mode": name,
        "settings": dataclasses.asdict(mode),
        "seconds": seconds,
        "results": results,
        "rows": rows,
        "gradients": {
            p: {m: {"dx": dx, "dc": dc} for m, (dx, dc) in c.items()}
            for p, c in curves.items()
        },
    }
    json_path = out_dir / "study_results.json"
    study_report.write_json(json_path, payload)
    return [
        ("gradient plot", gradients_png),
        ("box plot", boxplot_png),
        ("tables", markdown),
        ("all numbers", json_path),
    ]


def main(argv=None):
    return _common.run_main(lambda a: run(a)[0], PROG, argv)


if __name__ == "__main__":
    sys.exit(main())
