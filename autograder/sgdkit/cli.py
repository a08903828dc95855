"""The `sgdkit` command: one subcommand per verb module, each with add_arguments() and main()."""
import argparse
import importlib
import logging
import sys

VERBS = {
    "build": "regenerate assignments/ and the autograder zips from solutions/",
    "grade": "grade a folder of submitted notebooks into grades.csv",
    "report": "write report.html from a graded folder",
    "similarity": "flag pairs of a stage's submissions whose own code is alike, for a person to look at",
    "export": "merge the stages' grades into one gradebook CSV",
    "demo": "build, grade the bundled sample class, and write the report",
    "gradescope": "grade the one submission of a Gradescope or `otter grade` container (run_autograder calls it)",
}


class _Format(logging.Formatter):
    """`sgdkit VERB: message`, as the kit's errors have always looked; warnings say so."""

    def __init__(self, verb: str) -> None:
        super().__init__()
        self.verb = verb

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno in (logging.INFO, logging.ERROR) else f"{record.levelname.lower()}: "
        return f"sgdkit {self.verb}: {level}{record.getMessage()}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Only the verb asked for is imported (grading's imports cost most of a second): the others' options are
    # read only when they are asked for, and `sgdkit --help` lists the verbs from VERBS alone.
    chosen = next((word for word in argv if word in VERBS), None)
    parser = argparse.ArgumentParser(
        prog="sgdkit", description="Build, grade and report the minibatch-SGD assignment kit (see README.md).")
    # Every verb takes -v/-q: the log goes to stderr, what a verb produces to stdout or files.
    loudness = argparse.ArgumentParser(add_help=False)
    loudness.add_argument("-v", "--verbose", action="count", default=0, help="say more: each submission as it is graded")
    loudness.add_argument("-q", "--quiet", action="count", default=0, help="say only warnings (-qq: only errors)")
    commands = parser.add_subparsers(dest="verb", required=True)
    for verb, help_text in VERBS.items():
        sub = commands.add_parser(verb, help=help_text, description=help_text, parents=[loudness])
        if verb == chosen:
            importlib.import_module(f"sgdkit.{verb}").add_arguments(sub)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format(args.verb))
    logger = logging.getLogger("sgdkit")
    logger.handlers[:] = [handler]
    logger.setLevel(max(logging.DEBUG, min(logging.ERROR, logging.INFO + 10 * (args.quiet - args.verbose))))
    logger.propagate = False
    return importlib.import_module(f"sgdkit.{args.verb}").main(args)


if __name__ == "__main__":
    sys.exit(main())
