"""The images a tool is given: an image file, or a folder's images."""
import os
import os.path as osp
from typing import List

from .tool import ToolError

__all__ = ['IMAGE_EXTENSIONS', 'list_images']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp', '.ppm', '.pgm')


def list_images(path: str) -> List[str]:
    """The image files of ``path`` (a file, or a folder's images, sorted);
    each is checked to be an image (its header only).

    Raises:
        ToolError: No such file or folder, a folder without images, or a
            file that is not an image.
    """
    from PIL import Image
    if osp.isdir(path):
        images = sorted(
            osp.join(path, name) for name in os.listdir(path)
            if name.lower().endswith(IMAGE_EXTENSIONS)
            and osp.isfile(osp.join(path, name)))
        if not images:
            raise ToolError(f'no images in {path} (looked for '
                            f'{", ".join(IMAGE_EXTENSIONS)})')
    elif osp.isfile(path):
        images = [path]
    else:
        raise ToolError(f'input not found: {path}')
    for image in images:
        try:
            with Image.open(image):
                pass
        except Exception as e:  # noqa: BLE001 (any decoder error: one line)
            raise ToolError(
                f'cannot read image {image}: not an image file') from e
    return images
