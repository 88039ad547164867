"""`make demo`: both examples in quick mode, then one summary of what they wrote.

Runs `text_char_lm.py --quick` and `time_series_forecast.py --quick` one after
the other in this process (TensorFlow starts once), each with its own log
directory under `--logdir`, then lists every file written, the time each
example took and its numbers against its baselines. Needs the helper module
`_common.py` and both examples from the same directory.

    python examples/demo.py [--cell peephole] [--logdir runs] [--out artifacts]
"""

import sys
import time

import _common  # first: picks the TensorFlow backend before Keras loads
import keras
import text_char_lm
import time_series_forecast

PROG = "demo"


def run(argv=None):
    """Runs both examples; returns `[(summary, seconds)]`."""
    parser = _common.make_parser(PROG, __doc__)
    parser.add_argument(
        "--cell",
        default="peephole",
        choices=sorted(_common.CELLS),
        help="LSTM variant of both models",
    )
    parser.add_argument("--logdir", default="runs", help="TensorBoard root")
    parser.add_argument("--out", default="artifacts", help="model files")
    args = parser.parse_args(argv)
    flags = ["--quick", "--cell", args.cell, "--logdir", args.logdir]
    flags += ["--out", args.out]
    results = []
    for module in (text_char_lm, time_series_forecast):
        print(f"\n######## {module.PROG} {' '.join(flags)}\n", flush=True)
        start = time.perf_counter()
        summary = module.run(flags)
        results.append((summary, time.perf_counter() - start))
        print(f"\n{summary}", flush=True)
        keras.utils.clear_session()
    return results


def main(argv=None):
    """Runs the demo; returns the exit status (2 on bad input)."""
    try:
        results = run(argv)
    except _common.ExampleError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return _common.USAGE_ERROR
    print("\n" + "=" * 78)
    print("make demo wrote:")
    for summary, seconds in results:
        print(f"\n{summary.title}  [{seconds:.0f} s in all]")
        print("\n".join(summary.file_lines()))
    print()
    print(
        _common.tensorboard_hint(results[0][0].log_root) + "   (or: make tensorboard)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
