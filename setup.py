import re

from setuptools import find_packages, setup

# the version is written once, in refsim/_version.py
VERSION = re.search(r'__version__ = "([^"]+)"', open("refsim/_version.py", encoding="utf-8").read()).group(1)

setup(
    name="refsim",
    version=VERSION,
    description="Reference simulator for spiking neural networks converted from ANNs (IF, ternary, multi-threshold)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["refsim", "refsim.*"]),
    package_data={"refsim.data": ["*.nii.gz", "*.safetensors", "README.md"]},
    install_requires=["numpy>=1.26", "numba>=0.59", "scipy>=1.11", "nibabel>=5.0", "matplotlib>=3.7"],
    # torch is not an extra: an unpinned torch pulls CUDA builds; install torch==2.13.0 (CPU) by hand.
    # scikit-image and onnxruntime are test oracles (SSIM, PSNR, contingency tables; ONNX inference),
    # not used by refsim itself; onnx is the ONNX importer's parser (refsim[onnx]).
    # h5py in test: refsim reads NIR files with h5py itself, so the NIR import tests run without nir or torch
    extras_require={"test": ["pytest>=7", "hypothesis>=6.80", "safetensors>=0.4", "scikit-image>=0.22",
                             "onnx>=1.15", "onnxruntime>=1.17", "h5py>=3.8"],
                    "onnx": ["onnx>=1.15"],
                    "nir": ["nir>=1.0.4", "h5py>=3.8"],
                    "dask": ["dask[distributed]>=2024.1"]},
    entry_points={"console_scripts": ["refsim=refsim.cli:entry"]},
    license="MIT",
    classifiers=["Programming Language :: Python :: 3.11", "Topic :: Scientific/Engineering"],
)
