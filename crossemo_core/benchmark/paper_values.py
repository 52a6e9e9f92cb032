"""Numbers printed in the SIR-HCL paper (seed 000), for showing beside ours. They come from the paper's own data
(CMU-MOSI / CMU-MOSEI, FACET + COVAREP features, its splits), never from a run of this code."""
from __future__ import annotations

PAPER_COLUMNS = ("auc", "fpr", "tpr", "accuracy")

TABLE_II_MOSI: dict[str, tuple[float, float, float, float]] = {
    "CMAD [20]": (0.8437, 0.2230, 0.9193, 0.8437),
    "CMPC [7]": (0.8627, 0.2471, 0.7954, 0.7621),
    "NCR [33]": (0.8342, 0.2189, 0.8370, 0.8219),
    "MISA [29]": (0.8549, 0.1653, 0.8739, 0.8739),
    "HFIR [17]": (0.9079, 0.1823, 0.8635, 0.8817),
    "SIR-HCL": (0.9143, 0.1531, 0.9468, 0.8876),
}
"""Table II: AUC, FPR, TPR, accuracy on CMU-MOSI."""

TABLE_III_MOSEI: dict[str, tuple[float, float, float, float]] = {
    "CMAD [20]": (0.8734, 0.1781, 0.8507, 0.8767),
    "CMPC [7]": (0.8865, 0.1939, 0.9312, 0.8419),
    "NCR [33]": (0.8627, 0.1782, 0.9234, 0.8291),
    "MISA [29]": (0.8754, 0.1887, 0.9155, 0.8471),
    "HFIR [17]": (0.8971, 0.2135, 0.9228, 0.8651),
    "SIR-HCL": (0.9137, 0.1723, 0.9563, 0.8895),
}
"""Table III: AUC, FPR, TPR, accuracy on CMU-MOSEI."""

TABLE_VI_ABLATION: dict[str, tuple[float, float, float, float]] = {
    "w/o L_share": (0.8573, 0.8669, 0.8792, 0.8753),
    "w/o L_intra": (0.8705, 0.8613, 0.8727, 0.8681),
    "w/o L_cross": (0.8692, 0.8718, 0.8691, 0.8781),
    "w/o L_hard": (0.8737, 0.8715, 0.8893, 0.8703),
    "L_all": (0.9143, 0.8876, 0.9137, 0.8875),
}
"""Table VI: (MOSI AUC, MOSI accuracy, MOSEI AUC, MOSEI accuracy); the table's header is garbled in the seed text,
read here as MOSI then MOSEI (the L_all row matches Tables II and III)."""

PAPER_TABLES = {"misa": ("Table II (CMU-MOSI)", TABLE_II_MOSI),
                "synthetic-mosei": ("Table III (CMU-MOSEI)", TABLE_III_MOSEI)}
"""Which of the paper's tables is shown beside a dataset's paper suite (the closest data, not the same)."""
