"""sgdkit: build, grade and report an auto-graded minibatch-SGD assignment."""
from pathlib import Path

# The kit's checkout: solutions/, assignments/, autograder/zips/ live here.
ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ROOT / "assignments"
ZIPS = ROOT / "autograder" / "zips"
