"""Packaging for mvig2_mm: MobileViGv2 for the OpenMMLab 2.0 stack."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

#: What ``mim`` looks for in the installed package, under ``mvig2_mm/.mim/``
#: (as the OpenMMLab packages ship them): ``mim train/test`` take the
#: configs and tools/train.py, tools/test.py; ``mim run`` any other tool;
#: ``mim search`` reads model-index.yml and the metafiles it imports.
MIM_FILES = ('configs', 'tools', 'model-index.yml')
HERE = osp.dirname(osp.abspath(__file__))


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mvig2_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def link_mim_files() -> None:
    """An editable install (``pip install -e .``) sees ``mvig2_mm/.mim/``
    through links to the files at the repository root (not tracked by
    git); a wheel carries copies instead (``BuildPyWithMim``)."""
    mim_dir = osp.join(HERE, 'mvig2_mm', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        link = osp.join(mim_dir, name)
        if osp.islink(link) or osp.isfile(link):
            os.remove(link)
        elif osp.isdir(link):
            shutil.rmtree(link)
        os.symlink(osp.join('..', '..', name), link)


class BuildPyWithMim(build_py):
    """``build_py`` that copies the mim files into the built package, so
    that a wheel (and so ``pip install .`` or ``mim install``) carries
    ``mvig2_mm/.mim/``, without touching the source tree."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        mim_dir = osp.join(self.build_lib, 'mvig2_mm', '.mim')
        ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
        for name in MIM_FILES:
            src, dst = osp.join(HERE, name), osp.join(mim_dir, name)
            if osp.isdir(dst):
                shutil.rmtree(dst)
            os.makedirs(mim_dir, exist_ok=True)
            if osp.isdir(src):
                shutil.copytree(src, dst, ignore=ignore)
            else:
                shutil.copy2(src, dst)


if {'develop', 'editable_wheel'} & set(sys.argv):
    link_mim_files()


# The versions whose APIs mvig2_mm uses, as ranges, so that installing it into
# an existing OpenMMLab 2.x environment neither fails nor downgrades it. The
# tested stack (README: Requirements) is what tools/setup_env.sh installs,
# pinned through its constraints file. torch/torchvision are deliberately not
# listed: a user's working torch must never be replaced by a dependency
# resolution.
INSTALL_REQUIRES = [
    'mmengine>=0.10.0,<1.0.0',
    'mmcv>=2.0.0,<2.2.0',  # with compiled ops; mmdet 3.x needs mmcv < 2.2
    'mmdet>=3.0.0,<3.4.0',
    'mmsegmentation>=1.0.0,<1.3.0',
    'mmpretrain>=1.0.0,<1.3.0',
    'numpy>=1.23',
    'opencv-python>=4.10',  # first release built against numpy 2
    'setuptools<82',  # mmengine 0.10 needs pkg_resources for mmdet:: bases
    # needed at import/eval time by mmdet / mmseg
    'pycocotools>=2.0.8',
    'shapely',
    'terminaltables',
    'scipy',
    'ftfy',
    'regex',
]

EXTRAS_REQUIRE = {
    # pytest-xdist: `make test` runs the suite on every core
    'tests': ['pytest>=7', 'pytest-timeout', 'pytest-xdist'],
    # `make lint` (setup.cfg configures both)
    'lint': ['flake8>=7', 'isort>=5'],
    # tools/deployment: ONNX export (onnxscript for the torch.export-based
    # exporter, onnxruntime for --verify), Core ML, ExecuTorch (XNNPACK; its
    # PT2E quantizer needs torchao) and OpenVINO (NNCF for 8-bit); tested
    # with executorch 1.5.1, torchao 0.18.0, openvino 2026.4.1, nncf 3.4.0
    'deploy': ['onnx', 'onnxscript', 'onnxruntime', 'coremltools',
               'executorch>=1.5,<1.6', 'torchao>=0.18,<0.19',
               'openvino>=2026.4,<2026.5', 'nncf>=3.4,<3.5'],
    # tools/deployment/mmdeploy_convert.py: what mmdeploy 1.3.1 imports to
    # convert to and run ONNX Runtime (aenum: its codebase registry). mmdeploy
    # itself is installed apart, with --no-deps (tools/setup_env.sh): its
    # metadata pins protobuf<=3.20.2, which would downgrade onnx and protobuf
    'mmdeploy': ['aenum', 'onnx', 'onnxruntime'],
    # `mim train/test/run/search mvig2_mm`; opendatalab >= 0.0.10 pulls
    # openxlab, which downgrades setuptools (to 60.2, too old for editable
    # installs) and requests, and mim does not need it for these commands
    'mim': ['openmim>=0.3.9', 'opendatalab<0.0.10'],
}

setup(
    name='mvig2_mm',
    version=get_version(),
    description='MobileViGv2 (CVPRW 2024) backbone for mmdet, mmseg and '
    'mmpretrain (OpenMMLab 2.0)',
    long_description=(open('README.md').read()
                      if osp.exists('README.md') else ''),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=('mvig2_mm', 'mvig2_mm.*')),
    include_package_data=True,
    cmdclass={'build_py': BuildPyWithMim},
    python_requires='>=3.9',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    zip_safe=False,
)
