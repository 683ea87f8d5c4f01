"""The local demo's returns report check (demo_returns.sku_rates, return_rate_problems)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_returns  # noqa: E402

REPORT = {
    "currencies": [
        {"currency": "EUR", "by_sku": [
            {"sku": "TENT-2P", "units": 1, "units_sold": 4, "return_rate": 0.25},
            {"sku": "PEG-AL-10", "units": 2, "units_sold": 3, "return_rate": 0.6667},
        ]},
        {"currency": "GBP", "by_sku": [{"sku": "MUG", "units": 1, "units_sold": 0, "return_rate": None}]},
    ]
}


class ReturnRates(unittest.TestCase):
    def test_every_currencys_skus_are_read_with_their_figures(self):
        self.assertEqual(demo_returns.sku_rates(REPORT), {
            "TENT-2P": (1, 4, 0.25), "PEG-AL-10": (2, 3, 0.6667), "MUG": (1, 0, None)})

    def test_a_sku_never_counted_sold_is_a_problem_and_the_right_rates_are_not(self):
        problems = demo_returns.return_rate_problems(demo_returns.sku_rates(REPORT))
        self.assertEqual(problems, ["MUG: 1 back, but none counted sold"])

    def test_a_rate_that_is_not_back_over_sold_is_a_problem(self):
        problems = demo_returns.return_rate_problems({"TENT-2P": (1, 4, 0.5)})
        self.assertEqual(problems, ["TENT-2P: rate 0.5, not 1/4"])


if __name__ == "__main__":
    unittest.main()
