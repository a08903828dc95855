"""The `sgdkit` command: one subcommand per verb module, each with add_arguments() and main()."""
import argparse
import importlib
import sys

VERBS = {
    "build": "regenerate assignments/ and the autograder zips from solutions/",
    "grade": "grade a folder of submitted notebooks into grades.csv",
    "report": "write report.html from a graded folder",
    "export": "merge the stages' grades into one gradebook CSV",
    "demo": "build, grade the bundled sample class, and write the report",
    "gradescope": "grade the submission of a Gradescope run (the autograder zip's run_autograder calls it)",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="sgdkit", description="Build, grade and report the minibatch-SGD assignment kit (see README.md).")
    commands = parser.add_subparsers(dest="verb", required=True)
    for verb, help_text in VERBS.items():
        module = importlib.import_module(f"sgdkit.{verb}")
        module.add_arguments(commands.add_parser(verb, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    return importlib.import_module(f"sgdkit.{args.verb}").main(args)


if __name__ == "__main__":
    sys.exit(main())
