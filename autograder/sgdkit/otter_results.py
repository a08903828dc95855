"""results.pkl for `otter grade`: one graded submission as otter's own GradingResults, for otter to load with dill.

`otter grade` copies /autograder/results/results.pkl out of each container,
loads it with dill on the instructor's machine (otter/grade/containers.py) and
builds final_grades.csv from the loaded results (otter/grade/utils.py,
merge_scores_to_df): a column of points per question, the total, and a
grading_status that is "Completed" unless the results carry an error.

Loading a pickle runs whatever the pickle names, so this one names only otter's
result classes and builtins.RuntimeError, and holds only plain data (no test
code, no notebook): each question's points and parts exactly as `sgdkit grade`
scored them. A submission that scored nothing because it could not be graded
fully (invalid, tampered, crashed, ...) becomes results with an error, its
status as `sgdkit grade` writes it, which final_grades.csv shows as its
grading_status. One that still earned points keeps them (otter's table cannot
show points and an error in one row); its failed parts say why they failed.
"""
import pickle
from typing import Any

from .results import QuestionResult, Result, status_text
from .scoring import otter_folder, otter_test_files


def from_result(result: Result) -> Any:
    """otter's GradingResults of a graded submission: a test file per question, or the status as its error."""
    GradingResults = otter_test_files().GradingResults

    if result["status"] != "ok" and result["total"] == 0:
        return failed(status_text(result))
    return GradingResults([_test_file(question, outcome) for question, outcome in result["questions"].items()])


def failed(why: str) -> Any:
    """otter's GradingResults of a submission that was not graded: no scores, `why` as the error."""
    return otter_test_files().GradingResults.without_results(RuntimeError(why))


def _test_file(question: str, outcome: QuestionResult) -> Any:
    """One question as an otter test file: its hidden parts with their points, public tests at 0 points."""
    test_files = otter_test_files()
    ExceptionTestFile, TestCase, TestCaseResult = (test_files.ExceptionTestFile, test_files.abstract_test.TestCase,
                                                   test_files.abstract_test.TestCaseResult)
    test_file = ExceptionTestFile(question, f"tests/{question}.py", [], all_or_nothing=False)
    for test in outcome["tests"]:
        hidden = test["hidden"]
        case = TestCase(name=test["name"], body=None, hidden=hidden, points=test["points"] if hidden else 0,
                        success_message=None, failure_message=None)
        # For the instructor, who runs `otter grade`: why a hidden part failed, not just the student's hint.
        why = (outcome["details"].get(test["name"]) or test.get("hint")) if hidden else test.get("message")
        test_file.test_cases.append(case)
        test_file.test_case_results.append(TestCaseResult(case, None if test["passed"] else why, test["passed"]))
    return test_file


def dumps(results: Any) -> bytes:
    """The pickle `otter grade` loads with dill, written with the standard pickle (so it names no dill helper)."""
    with otter_folder():
        return pickle.dumps(results)
