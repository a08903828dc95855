"""Correct answers to the questions other questions build on, one module per question.

A stand-in replaces the student's answer to a prerequisite while a question
that builds on it is probed, so one bug costs points in one question only
(CONTRACT.md section 2). Each module is self-contained (it is sent to the
kernel as one source text) and defines PATCHES: [(class name, attribute,
function)]. The grader sends a stand-in only for the probed question's declared
prerequisites, and only after that prerequisite itself was probed.
"""
