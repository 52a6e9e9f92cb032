"""Baselines of the SIR-HCL paper and its seeds, behind one interface shared with SIR-HCL (see :mod:`.base`).

| name        | network                         | loss                                   | verdict                          |
|-------------|---------------------------------|----------------------------------------|----------------------------------|
| sir-hcl     | SIR-HCL                         | L_all (config.loss)                    | Beta mixture (config.train)      |
| cmad        | SIR-HCL                         | batch-all triplets, cross + intra      | fixed cosine threshold           |
| ncr         | SIR-HCL                         | hardest soft-margin triplets           | Gaussian mixture on pair loss    |
| tn-bcl      | SIR-HCL                         | bi-quintuple hinge (hard / literal)    | Youden threshold + kNN gate      |
| misa        | common / private encoders       | task + CMD + orthogonality + HSIC + rec| Beta mixture on common cosine    |
| hycon       | SIR-HCL                         | L_share + IAMCL + IEMCL + SCL          | Beta mixture (config.train)      |
| agreement   | two classifiers                 | CE per modality                        | 1 - sum_c p_f p_v >= 0.5         |
| disagreement| face logistic regression + a    | none for a voice reader's reading      | JS or 1 - sum p_f p_v, measure   |
|             | voice reader (or a 2nd LR)      | (logistic regressions otherwise)       | and Youden cut chosen on valid   |
| sir-hcl+    | SIR-HCL + the disagreement      | L_all (config.loss)                    | logistic regression on similarity|
| readings    | rule's readers                  |                                        | and valence pairs, fit on valid  |

Every method gets the same :class:`~crossemo_core.config.ExperimentConfig` (encoders, optimiser, epochs, seed).
"""
from __future__ import annotations

from typing import Any

from crossemo_core.baselines.agreement import AgreementMethod
from crossemo_core.baselines.base import EnsembleScorer, Method, PairScorer, PairScores, evaluate_scores
from crossemo_core.baselines.cmad import CMADMethod
from crossemo_core.baselines.disagreement import DisagreementMethod
from crossemo_core.baselines.evidence import EvidenceMethod
from crossemo_core.baselines.misa import MISAMethod
from crossemo_core.baselines.ncr import NCRMethod
from crossemo_core.baselines.sirhcl import HyConMethod, SIRHCLMethod
from crossemo_core.baselines.tnbcl import KnnAtypicalGate, TNBCLMethod
from crossemo_core.config import ExperimentConfig

METHODS: dict[str, type[Method]] = {m.name: m for m in (SIRHCLMethod, CMADMethod, NCRMethod, TNBCLMethod, MISAMethod,
                                                        HyConMethod, AgreementMethod, DisagreementMethod,
                                                        EvidenceMethod)}

DEFAULT_METHODS: tuple[str, ...] = tuple(n for n, m in METHODS.items() if m.in_default_suites)
"""What a benchmark runs when no methods are named (``sir-hcl+readings`` only when named)."""


def make_method(name: str, config: ExperimentConfig, **settings: Any) -> Method:
    """The method registered as ``name`` with the shared ``config`` and its own ``settings``."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name](config, **settings)


__all__ = ["DEFAULT_METHODS", "METHODS", "AgreementMethod", "CMADMethod", "DisagreementMethod", "EnsembleScorer",
           "EvidenceMethod", "HyConMethod", "KnnAtypicalGate", "MISAMethod", "Method", "NCRMethod", "PairScorer",
           "PairScores", "SIRHCLMethod", "TNBCLMethod", "evaluate_scores", "make_method"]
