"""cnnkit: the library behind CNN Lab.

Datasets, the layer catalogue and model specs, training jobs, saved runs,
evaluation, drawing preprocessing and charts. No Streamlit import anywhere:
the pages, the command line (`python -m cnnkit`) and the tests share it.
"""

__version__ = "0.1.0"
