"""pip install --no-build-isolation .

Builds mantra with the same CMake project as everything else (Release, no tests/examples)
against the torch installed in this Python environment, and installs the `mantra` package
with its extension (mantra._C) and libmantra next to it.
"""

import glob
import os
import shutil
import subprocess
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.path.join(ROOT, "build", "pip")
        cmake_args = [
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython_EXECUTABLE={sys.executable}",
            "-DMANTRA_BUILD_TESTS=OFF",
            "-DMANTRA_BUILD_EXAMPLES=OFF",
            "-DMANTRA_BUILD_BENCHMARKS=OFF",
            f"-DMANTRA_CUDA={os.environ.get('MANTRA_CUDA', 'AUTO')}",
        ]
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        subprocess.check_call(["cmake", "-S", ROOT, "-B", build_dir, *generator, *cmake_args])
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "mantra_python"])
        # The build puts _C and libmantra into python/mantra; ship them with the package.
        target = os.path.dirname(self.get_ext_fullpath(ext.name))
        os.makedirs(target, exist_ok=True)
        for path in glob.glob(os.path.join(ROOT, "python", "mantra", "_C*.so")) + glob.glob(
            os.path.join(ROOT, "python", "mantra", "libmantra.so*")
        ):
            shutil.copy2(path, target)


setup(
    name="mantra",
    version="0.1.0",
    description="Manifold-constrained layers, trivializations and Riemannian optimizers for PyTorch",
    package_dir={"": "python"},
    packages=find_packages("python"),
    ext_modules=[Extension("mantra._C", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
    install_requires=["torch==2.11.0"],
    zip_safe=False,
)
