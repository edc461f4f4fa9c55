"""What the data tests' shared synthetic archive holds (the fixtures that write it are in conftest.py)."""

N_PER_CLASS = 20
EXPECTED_DROPS = {"empty": 2, "not_utf8": 1, "no_rating": 1, "rating_mismatch": 1}
