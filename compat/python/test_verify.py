"""Unit tests for verify.py: python3 -m unittest discover -s compat/python -p 'test_*.py'"""

import unittest

import verify


def records(keys=3, per_key=4, part=lambda k: k % 2, prefix=""):
    return [f"{prefix}{part(k)}\tkey-{k}\tkey-{k}:{s}\n" for s in range(per_key) for k in range(keys)]


class CheckTest(unittest.TestCase):
    def test_cases(self):
        good = records()
        swapped = list(good)
        swapped[0], swapped[3] = swapped[3], swapped[0]
        moved = list(good)
        moved[3] = "9\tkey-0\tkey-0:1\n"
        cases = [
            ("all good", good, None),
            ("console consumer partition prefix", records(prefix="Partition:"), None),
            ("blank lines ignored", good + ["\n"], None),
            ("one missing", good[:-1], "consumed 11 records"),
            ("one duplicated", good + good[-1:], "consumed 13 records"),
            ("out of order", swapped, "got sequence 1, want 0"),
            ("key in two partitions", moved, "found in partitions"),
            ("value of another key", good[:-1] + ["1\tkey-2\tkey-1:3\n"], "does not belong"),
            ("no sequence", good[:-1] + ["1\tkey-2\tkey-2:x\n"], "no sequence number"),
            ("two fields", good[:-1] + ["1\tkey-2\n"], "want 3 tab-separated fields"),
        ]
        for name, lines, want in cases:
            with self.subTest(name):
                got = verify.check(lines, 3, 4)
                if want is None:
                    self.assertIsNone(got)
                else:
                    self.assertIsNotNone(got)
                    self.assertIn(want, got)


if __name__ == "__main__":
    unittest.main()
