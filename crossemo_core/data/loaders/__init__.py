from crossemo_core.data.loaders.synthetic import make_synthetic, MOSEI_SIZE
from crossemo_core.data.loaders.misa import load_misa
from crossemo_core.data.loaders.mmsa import load_mmsa, load_mmsa_splits
from crossemo_core.data.loaders.csd import load_csd, read_csd, write_csd
from crossemo_core.data.loaders.demo import load_demo
from crossemo_core.data.loaders.ravdess import load_ravdess
