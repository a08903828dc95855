"""What enters the student's kernel: one probe module per stage, run on grader-chosen inputs.

Nothing in this package knows an answer. A probe calls the student's functions
and returns what they did as plain JSON data; the judges (the stage modules one
level up, never sent to the kernel) decide whether that was right. The grader
sends the kernel this package's `common` and one stage module, plus the
stand-ins (../standins) of the probed question's prerequisites only, and only
once those prerequisites were judged. Modules here import nothing but the
standard library and each other (no numpy): the kernel's numpy is the student's.
"""
