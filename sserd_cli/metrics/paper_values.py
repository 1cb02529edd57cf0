"""The paper's Table 1 (SSERD, ACM MM 2024), printed beside our numbers for comparison."""

from __future__ import annotations

# dataset -> method -> setting -> metric -> value (average over the seven emotions)
TABLE1 = {
    "mead": {
        "SSERD (paper)": {"intra": {"FAD": 0.740, "LSE-D": 9.126, "CSIM": 0.904},
                          "cross": {"FAD": 2.453, "LSE-D": 9.200, "CSIM": 0.848}},
        "NED (paper)": {"intra": {"FAD": 2.108, "LSE-D": 9.454, "CSIM": 0.831},
                        "cross": {"FAD": 4.448, "LSE-D": 9.906, "CSIM": 0.773}},
    },
    "ravdess": {
        "SSERD (paper)": {"intra": {"FAD": 1.399, "LSE-D": 7.441, "CSIM": 0.894},
                          "cross": {"FAD": 3.360, "LSE-D": 7.621, "CSIM": 0.790}},
        "NED (paper)": {"intra": {"FAD": 3.057, "LSE-D": 7.562, "CSIM": 0.825},
                        "cross": {"FAD": 5.412, "LSE-D": 8.034, "CSIM": 0.760}},
    },
}
