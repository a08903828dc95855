"""Not used: the kit grades with run_autograder (`sgdkit gradescope`), never with otter's own runner.

`otter grade` builds its image with a Dockerfile that ADDs run_otter.py from
the autograder zip, so the zip holds this file. otter's runner would run the
hidden tests inside the student's kernel; the kit's never does.
"""
import sys

sys.exit("run_otter.py is not the kit's runner: /autograder/run_autograder grades the submission")
