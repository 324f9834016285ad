"""Report figures (matplotlib, Agg): coronal PET MIPs, axial PET/CT fusion, time courses.

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly (Agg canvas, no
``pyplot`` global state, no backend switch). Every function returns PNG bytes;
:func:`png_data_uri` turns them into a ``data:`` URI so that the HTML report needs no
external file.

Display conventions
-------------------
Arrays are first brought to a canonical orientation (:func:`canonical_array`): each array
axis is aligned with the LPS axis its direction cosine points along most, and flipped so
that indices increase towards +x (patient left), +y (posterior) and +z (superior). Then:

* **coronal MIP**: maximum over the antero-posterior (y) axis; superior at the top; patient
  right on the image *left* (radiological convention; LPS +x is patient left, so image
  columns increase towards +x); inverted grey scale (black = high uptake); aspect ratio
  from the voxel spacing;
* **axial fusion**: one axial PET slice through the lesion's SUVmax voxel, anterior at the
  top and patient right on the image left; the CT is resampled onto the PET grid
  (linear interpolation, identity transform, same frame of reference) and shown in a
  soft-tissue window (W 400 / L 40 HU) under the SUV in a ``hot`` colour map, alpha-blended.
* **site fusion** (:func:`site_fusion_png`): the same display, drawn in patient (LPS)
  millimetres so that the CT keeps its native in-plane resolution: the CT slice nearest to
  the requested height under the PET slice nearest to it, a colour bar in SUV, the CT
  longest diameter drawn from its LPS end points and the SUVpeak sphere (1 mL, radius
  6.2 mm) when its centre lies in the PET slice shown.

The grid must be axis-aligned up to permutations and flips (the usual PET case); an
oblique grid is displayed along its nearest LPS axes.

References
----------
.. [1] DICOM PS3.3 C.7.6.2.1.1 (patient coordinate system, LPS).
.. [2] Boellaard R. et al., "FDG PET/CT: EANM procedure guidelines for tumour imaging:
   version 2.0", Eur J Nucl Med Mol Imaging 2015;42:328-354 (MIP review, SUV display).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from skimage import measure as skmeasure

from emlesion.errors import InvalidParameterError, format_message
from emlesion.io.geometry import Grid

__all__ = [
    "CT_WINDOW_HU",
    "DEFAULT_SUV_WINDOW",
    "Canonical",
    "canonical_array",
    "coronal_mip_png",
    "fusion_png",
    "png_data_uri",
    "site_fusion_png",
    "timecourse_png",
]

#: Default SUV display window (g/mL) of the MIP and the fusion overlay.
DEFAULT_SUV_WINDOW: tuple[float, float] = (0.0, 10.0)
#: CT soft-tissue window (lower, upper) HU = level 40, width 400.
CT_WINDOW_HU: tuple[float, float] = (-160.0, 240.0)
_DPI = 90
#: Radius (mm) of the 1 mL sphere of the SUVpeak (IBSI global intensity peak).
PEAK_SPHERE_RADIUS_MM = float((3.0 * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0))
_CONTOUR_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                    "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f")


def contour_colour(index: int) -> str:
    """A distinct colour for the ``index``-th lesion or track (cycles after 10)."""
    return _CONTOUR_COLOURS[index % len(_CONTOUR_COLOURS)]


@dataclass(frozen=True)
class Canonical:
    """How a ``(z, y, x)`` array maps onto canonical LPS-aligned axes.

    ``perm[i]`` is the array axis that becomes canonical axis ``i`` (0 = z/superior,
    1 = y/posterior, 2 = x/left); ``flip[i]`` tells whether it is reversed; ``spacing_zyx``
    is the spacing (mm) along the canonical axes.
    """

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]
    spacing_zyx: tuple[float, float, float]

    @classmethod
    def of(cls, grid: Grid) -> Canonical:
        """The canonical mapping of a grid (nearest LPS axis for each index axis)."""
        d = grid.direction_matrix  # columns: LPS vectors of the x, y, z index axes
        # array axis a (0=z,1=y,2=x) has LPS direction column (2 - a)
        lps_of_array_axis = [int(np.argmax(np.abs(d[:, 2 - a]))) for a in range(3)]
        if sorted(lps_of_array_axis) != [0, 1, 2]:  # degenerate (45 degree) obliquity
            lps_of_array_axis = [2, 1, 0]
        perm = [0, 0, 0]
        flip = [False, False, False]
        spacing = [0.0, 0.0, 0.0]
        sp_zyx = grid.spacing_mm[::-1]
        for a, lps in enumerate(lps_of_array_axis):
            c = 2 - lps  # canonical axis index (z first)
            perm[c] = a
            flip[c] = bool(d[lps, 2 - a] < 0)
            spacing[c] = float(sp_zyx[a])
        return cls((perm[0], perm[1], perm[2]), (flip[0], flip[1], flip[2]),
                   (spacing[0], spacing[1], spacing[2]))

    def apply(self, array: np.ndarray) -> np.ndarray:
        """``array`` in canonical order (a view when possible)."""
        out = np.transpose(array, self.perm)
        for axis, f in enumerate(self.flip):
            if f:
                out = np.flip(out, axis=axis)
        return out

    def index(self, zyx: Sequence[int], shape: Sequence[int]) -> tuple[int, int, int]:
        """Canonical index of an array index ``zyx`` (array of shape ``shape``)."""
        out = [0, 0, 0]
        for c in range(3):
            a = self.perm[c]
            v = int(zyx[a])
            out[c] = shape[a] - 1 - v if self.flip[c] else v
        return (out[0], out[1], out[2])


def canonical_array(array: np.ndarray, grid: Grid) -> np.ndarray:
    """``array`` (on ``grid``) reoriented to (superior, posterior, left)-increasing axes."""
    return Canonical.of(grid).apply(array)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", pad_inches=0.05)
    return buf.getvalue()


def png_data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def coronal_mip_png(
    suv: np.ndarray,
    grid: Grid,
    labels: np.ndarray | None = None,
    lesion_names: Mapping[int, str] | None = None,
    *,
    title: str = "",
    suv_window: tuple[float, float] = DEFAULT_SUV_WINDOW,
    colours: Mapping[int, str] | None = None,
    height_in: float = 5.0,
    colorbar_label: str | None = None,
) -> bytes:
    """Coronal maximum-intensity projection of an SUV image with lesion contours.

    Parameters
    ----------
    suv : ndarray
        SUV image ``(z, y, x)`` on ``grid``.
    grid : Grid
        Geometry of ``suv`` and ``labels``.
    labels : ndarray, optional
        Lesion labels on the same grid; each label's own MIP is contoured
        (``skimage.measure.find_contours`` at 0.5) and annotated with its name.
    lesion_names : mapping, optional
        Text written next to each label's contour (default ``"<label>"``).
    title : str
        Figure title (plain text, not HTML).
    suv_window : (float, float)
        Display range of the inverted grey scale (SUV g/mL).
    colours : mapping, optional
        Contour colour per label.
    height_in : float
        Figure height in inches (the width follows from the aspect ratio).
    colorbar_label : str, optional
        Draw a colour bar of ``suv_window`` with this label (e.g. ``"SUVbw (g/mL)"``).

    Returns
    -------
    bytes
        PNG image.
    """
    canon = Canonical.of(grid)
    img = canon.apply(np.asarray(suv, dtype=np.float32))
    mip = img.max(axis=1)  # (z, x): superior increasing with row, left increasing with column
    sz, _, sx = canon.spacing_zyx
    nz, nx = mip.shape
    extent = (-0.5 * sx, (nx - 0.5) * sx, -0.5 * sz, (nz - 0.5) * sz)
    width_in = max(1.5, min(8.0, height_in * (nx * sx) / max(nz * sz, 1e-6)))
    if colorbar_label:
        width_in += 0.9  # room for the colour bar beside the image
    fig = Figure(figsize=(width_in, height_in))
    ax = fig.subplots()
    shown = ax.imshow(mip, cmap="gray_r", vmin=suv_window[0], vmax=suv_window[1],
                      origin="lower", extent=extent, interpolation="bilinear")
    if colorbar_label:
        bar = fig.colorbar(shown, ax=ax, fraction=0.06, pad=0.03)
        bar.set_label(_plain(colorbar_label), fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if labels is not None:
        lab = canon.apply(np.asarray(labels))
        present = [int(v) for v in np.unique(lab) if v != 0]
        for n, value in enumerate(present):
            proj = (lab == value).any(axis=1).astype(np.float32)
            colour = (colours or {}).get(value, contour_colour(n))
            padded = np.pad(proj, 1)
            top = None
            for c in skmeasure.find_contours(padded, 0.5):
                rows = (c[:, 0] - 1) * sz
                cols = (c[:, 1] - 1) * sx
                ax.plot(cols, rows, color=colour, linewidth=1.0)
                if top is None or rows.max() > top[1]:
                    top = (float(cols[np.argmax(rows)]), float(rows.max()))
            if top is not None:
                text = (lesion_names or {}).get(value, str(value))
                ax.annotate(text, xy=top, xytext=(3, 3), textcoords="offset points",
                            color=colour, fontsize=8, fontweight="bold")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.02, 0.98, "R", transform=ax.transAxes, va="top", ha="left", fontsize=9,
            color="#444")
    ax.text(0.98, 0.98, "L", transform=ax.transAxes, va="top", ha="right", fontsize=9,
            color="#444")
    if title:
        ax.set_title(title, fontsize=9)
    return _png(fig)


def fusion_png(
    suv: np.ndarray,
    grid: Grid,
    mask: np.ndarray,
    *,
    ct: np.ndarray | None = None,
    centre_zyx: Sequence[int] | None = None,
    title: str = "",
    suv_window: tuple[float, float] = DEFAULT_SUV_WINDOW,
    ct_window_hu: tuple[float, float] = CT_WINDOW_HU,
    colour: str = "#00e5ff",
    alpha: float = 0.5,
    field_of_view_mm: float | None = 180.0,
    size_in: float = 2.6,
) -> bytes:
    """Axial PET/CT fusion slice through one lesion, with the lesion contour.

    Parameters
    ----------
    suv : ndarray
        SUV image ``(z, y, x)`` on ``grid``.
    grid : Grid
        PET grid (``mask`` and ``ct`` must be on it).
    mask : ndarray of bool
        The lesion mask.
    ct : ndarray, optional
        CT (HU) already resampled onto the PET grid; without it the slice is PET only.
    centre_zyx : sequence of int, optional
        Array index of the slice centre; default the lesion's SUVmax voxel.
    title : str
        Figure title (plain text).
    suv_window, ct_window_hu : (float, float)
        Display ranges.
    colour : str
        Contour colour.
    alpha : float
        Opacity of the SUV overlay on the CT.
    field_of_view_mm : float, optional
        Width of the square field shown, centred on the lesion (clipped to the image);
        None shows the whole slice.
    size_in : float
        Figure width and height in inches.

    Returns
    -------
    bytes
        PNG image.
    """
    m = np.asarray(mask, dtype=bool)
    if centre_zyx is None:
        vals = np.where(m, np.asarray(suv, dtype=np.float32), -np.inf)
        centre = tuple(int(v) for v in np.unravel_index(int(np.argmax(vals)), vals.shape))
    else:
        centre = tuple(int(v) for v in centre_zyx)
    canon = Canonical.of(grid)
    k, _, _ = canon.index(centre, m.shape)
    pet_sl = canon.apply(np.asarray(suv, dtype=np.float32))[k]
    m_sl = canon.apply(m)[k]
    _, sy, sx = canon.spacing_zyx
    ny, nx = pet_sl.shape
    extent = (-0.5 * sx, (nx - 0.5) * sx, (ny - 0.5) * sy, -0.5 * sy)
    fig = Figure(figsize=(size_in, size_in))
    ax = fig.subplots()
    ax.set_facecolor("black")
    if ct is not None:
        ct_sl = canon.apply(np.asarray(ct, dtype=np.float32))[k]
        ax.imshow(ct_sl, cmap="gray", vmin=ct_window_hu[0], vmax=ct_window_hu[1],
                  extent=extent, interpolation="bilinear")
        # hide the overlay below 15 % of the window so that the CT shows through background
        floor = suv_window[0] + 0.15 * (suv_window[1] - suv_window[0])
        overlay = np.ma.masked_less(pet_sl, floor)
        ax.imshow(overlay, cmap="hot", vmin=suv_window[0], vmax=suv_window[1], alpha=alpha,
                  extent=extent, interpolation="bilinear")
    else:
        ax.imshow(pet_sl, cmap="hot", vmin=suv_window[0], vmax=suv_window[1], extent=extent,
                  interpolation="bilinear")
    for c in skmeasure.find_contours(np.pad(m_sl.astype(np.float32), 1), 0.5):
        ax.plot((c[:, 1] - 1) * sx, (c[:, 0] - 1) * sy, color=colour, linewidth=1.0)
    x0, x1, y1, y0 = extent
    if field_of_view_mm is not None:
        rows, cols = np.nonzero(m_sl)
        cy = float(rows.mean()) * sy if rows.size else 0.5 * (y0 + y1)
        cx = float(cols.mean()) * sx if cols.size else 0.5 * (x0 + x1)
        half = 0.5 * field_of_view_mm
        x0, x1 = max(x0, cx - half), min(x1, cx + half)
        y0, y1 = max(y0, cy - half), min(y1, cy + half)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # anterior (small y) at the top
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.02, 0.98, "R", transform=ax.transAxes, va="top", ha="left", fontsize=8,
            color="white")
    ax.text(0.98, 0.98, "L", transform=ax.transAxes, va="top", ha="right", fontsize=8,
            color="white")
    if title:
        ax.set_title(title, fontsize=8)
    return _png(fig)


@dataclass(frozen=True)
class _AxialSlice:
    """One axial slice in canonical display order with its extent in LPS millimetres."""

    image: np.ndarray  # (rows = +y posterior, columns = +x patient left)
    extent: tuple[float, float, float, float]  # (x left edge, x right edge, y bottom, y top)
    index: int  # canonical slice index
    z_mm: float  # LPS z of the slice centre
    thickness_mm: float


def _lps_low(grid: Grid) -> np.ndarray:
    """Lowest LPS (x, y, z) voxel-centre coordinate of an axis-aligned grid."""
    nz, ny, nx = grid.shape
    corners = np.array([[z, y, x] for z in (0, nz - 1) for y in (0, ny - 1)
                        for x in (0, nx - 1)], dtype=float)
    return np.asarray(grid.index_to_lps(corners)).min(axis=0)


def _axial_slice(array: np.ndarray, grid: Grid, z_mm: float) -> _AxialSlice:
    """The axial slice of ``array`` nearest to LPS height ``z_mm`` (clipped to the grid)."""
    canon = Canonical.of(grid)
    img = canon.apply(np.asarray(array))
    sz, sy, sx = canon.spacing_zyx
    low = _lps_low(grid)
    nz, ny, nx = img.shape
    k = int(np.clip(round((z_mm - float(low[2])) / sz), 0, nz - 1))
    x0, y0 = float(low[0]), float(low[1])
    extent = (x0 - 0.5 * sx, x0 + (nx - 0.5) * sx, y0 + (ny - 0.5) * sy, y0 - 0.5 * sy)
    return _AxialSlice(np.asarray(img[k], dtype=np.float32), extent, k,
                       float(low[2]) + k * sz, sz)


def _plain(text: str) -> str:
    """``text`` safe for a matplotlib title (no mathtext)."""
    return text.replace("$", r"\$")


def site_fusion_png(
    suv: np.ndarray,
    grid: Grid,
    *,
    z_mm: float,
    centre_xy_mm: Sequence[float] | np.ndarray,
    ct: np.ndarray | None = None,
    ct_grid: Grid | None = None,
    mask: np.ndarray | None = None,
    ld_endpoints_mm: Sequence[Sequence[float]] | np.ndarray | None = None,
    ld_mm: float | None = None,
    peak_centre_mm: Sequence[float] | np.ndarray | None = None,
    title: str = "",
    suv_label: str = "SUV (g/mL)",
    suv_window: tuple[float, float] = DEFAULT_SUV_WINDOW,
    ct_window_hu: tuple[float, float] = CT_WINDOW_HU,
    alpha: float = 0.5,
    field_of_view_mm: float = 140.0,
    width_in: float = 5.0,
) -> bytes:
    """Axial PET/CT fusion of a lesion site, in patient millimetres, with an SUV colour bar.

    Parameters
    ----------
    suv : ndarray
        SUV image ``(z, y, x)`` on ``grid``.
    grid : Grid
        PET grid.
    z_mm : float
        LPS height (mm) of the axial slice shown (e.g. the CT longest-diameter slice, or the
        SUVpeak centre); the PET and CT slices nearest to it are shown.
    centre_xy_mm : (float, float)
        LPS ``(x, y)`` (mm) of the centre of the field shown.
    ct : ndarray, optional
        CT (HU) on ``ct_grid`` (its native grid, same frame of reference); without it the
        slice is PET only.
    ct_grid : Grid, optional
        Grid of ``ct`` (required with ``ct``).
    mask : ndarray of bool, optional
        Lesion mask on ``grid``, contoured in cyan on the PET slice.
    ld_endpoints_mm : pair of (x, y, z), optional
        LPS end points (mm) of the CT longest diameter, drawn as a green line.
    ld_mm : float, optional
        Length written next to the line (default: the end points' distance).
    peak_centre_mm : (x, y, z), optional
        LPS centre (mm) of the SUVpeak sphere, circled (dashed) when in the PET slice shown.
    title : str
        Figure title (plain text).
    suv_label : str
        Colour-bar label (the SUV quantity and its unit).
    suv_window, ct_window_hu : (float, float)
        Display ranges (SUV g/mL; HU).
    alpha : float
        Opacity of the SUV overlay on the CT.
    field_of_view_mm : float
        Width of the square field shown (mm).
    width_in : float
        Figure width in inches (at 90 dpi, 5 in gives an image about 370 pixels wide).

    Returns
    -------
    bytes
        PNG image.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Circle

    pet = _axial_slice(suv, grid, z_mm)
    fig = Figure(figsize=(width_in, width_in * 0.86))
    ax = fig.subplots()
    ax.set_facecolor("black")
    if ct is not None:
        if ct_grid is None:
            raise InvalidParameterError(format_message(
                "a CT image needs its grid", fix="pass ct_grid= with ct="))
        cts = _axial_slice(ct, ct_grid, z_mm)
        ax.imshow(cts.image, cmap="gray", vmin=ct_window_hu[0], vmax=ct_window_hu[1],
                  extent=cts.extent, interpolation="bilinear")
        floor = suv_window[0] + 0.15 * (suv_window[1] - suv_window[0])
        ax.imshow(np.ma.masked_less(pet.image, floor), cmap="hot", vmin=suv_window[0],
                  vmax=suv_window[1], alpha=alpha, extent=pet.extent, interpolation="bilinear")
    else:
        ax.imshow(pet.image, cmap="hot", vmin=suv_window[0], vmax=suv_window[1],
                  extent=pet.extent, interpolation="bilinear")
    if mask is not None:
        x_lo, x_hi, y_hi, y_lo = pet.extent  # outer edges; rows run towards +y (posterior)
        m = _axial_slice(np.asarray(mask, dtype=np.float32), grid, z_mm).image
        sx = (x_hi - x_lo) / m.shape[1]
        sy = (y_hi - y_lo) / m.shape[0]
        for c in skmeasure.find_contours(np.pad(m, 1), 0.5):  # padded index p: pixel p - 1
            ax.plot(x_lo + (c[:, 1] - 0.5) * sx, y_lo + (c[:, 0] - 0.5) * sy,
                    color="#00e5ff", linewidth=1.0)
    if peak_centre_mm is not None and abs(float(peak_centre_mm[2]) - pet.z_mm) \
            <= 0.5 * pet.thickness_mm + 1e-6:
        ax.add_patch(Circle((float(peak_centre_mm[0]), float(peak_centre_mm[1])),
                            PEAK_SPHERE_RADIUS_MM, fill=False, edgecolor="#7fff00",
                            linestyle="--", linewidth=1.0))
    if ld_endpoints_mm is not None:
        a, b = (np.asarray(p, dtype=float) for p in ld_endpoints_mm)
        length = float(ld_mm) if ld_mm is not None else float(np.linalg.norm(b[:2] - a[:2]))
        ax.plot([a[0], b[0]], [a[1], b[1]], color="#00ff66", linewidth=1.8,
                marker="o", markersize=2.5)
        ax.annotate(f"LD {length:.1f} mm", xy=(float(b[0]), float(b[1])), xytext=(4, -4),
                    textcoords="offset points", color="#00ff66", fontsize=8,
                    fontweight="bold")
    cx, cy = float(centre_xy_mm[0]), float(centre_xy_mm[1])
    half = 0.5 * field_of_view_mm
    ax.set_xlim(cx - half, cx + half)
    ax.set_ylim(cy + half, cy - half)  # anterior (small y) at the top
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.02, 0.98, "R", transform=ax.transAxes, va="top", ha="left", fontsize=8,
            color="white")
    ax.text(0.98, 0.98, "L", transform=ax.transAxes, va="top", ha="right", fontsize=8,
            color="white")
    ax.text(0.02, 0.02, f"z {pet.z_mm:.0f} mm", transform=ax.transAxes, va="bottom",
            ha="left", fontsize=7, color="white")
    bar = fig.colorbar(ScalarMappable(norm=Normalize(*suv_window), cmap="hot"), ax=ax,
                       fraction=0.046, pad=0.03)
    bar.set_label(_plain(suv_label), fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if title:
        ax.set_title(_plain(title), fontsize=9)
    return _png(fig)


def timecourse_png(
    series: Mapping[str, Sequence[tuple[float, float | None, float | None]]],
    *,
    peak_label: str = "SULpeak",
    x_label: str = "days since baseline",
    colours: Mapping[str, str] | None = None,
    x_range: tuple[float, float] | None = None,
) -> bytes:
    """Two panels: SULpeak (or SUVpeak) and MTV of each track over time.

    Parameters
    ----------
    series : mapping
        Track id -> sequence of ``(x, peak, mtv_ml)``; ``None`` values (lesion absent or
        not measured) break the line.
    peak_label : str
        Y-axis label of the first panel.
    x_label : str
        X-axis label (days since baseline, or timepoint index when dates are unknown).
    colours : mapping, optional
        Line colour per track id.
    x_range : (float, float), optional
        X-axis span of both panels (e.g. the first and last scan day), so that both cover
        the whole study; default: the span of every point of ``series``.

    Returns
    -------
    bytes
        PNG image.
    """
    fig = Figure(figsize=(8.0, 3.0))
    axes = fig.subplots(1, 2)
    for n, (track, points) in enumerate(series.items()):
        colour = (colours or {}).get(track, contour_colour(n))
        xs = np.array([p[0] for p in points], dtype=float)
        for ax, idx in ((axes[0], 1), (axes[1], 2)):
            ys = np.array([np.nan if p[idx] is None else p[idx] for p in points], dtype=float)
            ax.plot(xs, ys, marker="o", color=colour, label=track)
    axes[0].set_ylabel(_plain(peak_label))
    axes[1].set_ylabel("MTV (mL)")
    xs_all = [float(p[0]) for points in series.values() for p in points]
    lo, hi = x_range if x_range is not None else (min(xs_all, default=0.0),
                                                  max(xs_all, default=1.0))
    pad = 0.04 * max(hi - lo, 1.0)
    for ax in axes:
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_xlabel(x_label)
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    if series:
        axes[1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _png(fig)
