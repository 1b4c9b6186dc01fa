"""Command line: `python -m cnnkit COMMAND` — the same code paths as the app.

Each command is one `add_*` function that registers its sub-parser and
handler. User errors print one sentence and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from cnnkit.errors import UserError


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


# --- datasets -----------------------------------------------------------------
def add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="list every dataset, its shape and which source would serve it now")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_datasets)


def cmd_datasets(args) -> int:
    from cnnkit import datasets

    rows = datasets.describe_sources()
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'dataset':<15}{'shape':<12}{'classes':<9}source now")
    for r in rows:
        shape = "×".join(str(s) for s in r["image_shape"])
        print(f"{r['name']:<15}{shape:<12}{r['num_classes']:<9}{r['source_text']}")
    return 0


# --- evaluate (issue 5) ---------------------------------------------------------
def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="test accuracy, loss and the per-class report of a saved run")
    p.add_argument("--run", required=True, help="the run folder (as written by `train` or the app)")
    p.add_argument("--dataset", help="a catalogue name or an .npz/.zip file (default: the run's own dataset)")
    p.add_argument("--batch-size", type=int, default=500, help="images per batch (default 500)")
    p.add_argument("--json", action="store_true", help="print JSON: metrics, report and confusion matrix")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from cnnkit import evaluation, runs

    run = runs.load_run(args.run)
    ds = evaluation.dataset_for_run(run, args.dataset)
    ev = evaluation.evaluate(run, ds, batch_size=args.batch_size)
    if args.json:
        _print_json(evaluation.to_json_dict(ev, run=run, dataset=ds))
    else:
        print(evaluation.report_text(ev, run=run, dataset=ds))
    return 0


COMMANDS = [add_datasets, add_evaluate]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnkit", description="CNN Lab from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
