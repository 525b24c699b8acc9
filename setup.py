"""Packaging for mvig2_mm: MobileViGv2 for the OpenMMLab 2.0 stack."""
import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mvig2_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


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
    'tests': ['pytest>=7', 'pytest-timeout'],
    # `make lint` (setup.cfg configures both)
    'lint': ['flake8>=7', 'isort>=5'],
    # tools/deployment: ONNX export (onnxscript for the torch.export-based
    # exporter, onnxruntime for --verify), Core ML
    'deploy': ['onnx', 'onnxscript', 'onnxruntime', 'coremltools'],
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
    python_requires='>=3.9',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    zip_safe=False,
)
