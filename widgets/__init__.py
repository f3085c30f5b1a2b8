"""The embeddable feedback widgets, as files the gateway serves under ``/widgets/``.

Plain JavaScript and CSS, no build step: ``v1/voxloop.js`` is what pages embed. The folder is a
package only so that an installed gateway finds the files next to its code.
"""

from pathlib import Path
from typing import Final

#: The folder served at ``/widgets/``: ``/widgets/v1/voxloop.js`` is ``WIDGETS_DIR/v1/voxloop.js``.
WIDGETS_DIR: Final = Path(__file__).resolve().parent
