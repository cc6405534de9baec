"""The page: three tabs wired to the handlers of :mod:`.explain`,
:mod:`.classmodel` and :mod:`.compare`, each kind of job in its own queue.

Saliency requests and class visualisations run in separate concurrency
groups, so that a long class visualisation never holds the slot a saliency
map waits for; each user sees their place in the queue while waiting.
"""

from __future__ import annotations

import functools
import inspect
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ..attribution import METHODS
from ..attribution.methods import unmet_need
from ..errors import DeepInsideError
from ..io.samples import SAMPLE_PHOTOS, sample_photo
from ..localization import PRESETS as LOCALIZATION_PRESETS
from ..visualization import presets
from . import classmodel, compare, explain
from .options import Control, controls_for, method_settings
from .session import TOP1, Server, prediction_label
from .shown import PictureFiles
from .uploads import ACCEPTED_SUFFIXES, read_upload

#: Concurrent jobs per kind: saliency maps are short and many; a class
#: visualisation takes the cores for a while, so one at a time.
SALIENCY_SLOTS = 2
CLASSMODEL_SLOTS = 1
COMPARE_SLOTS = 1

DEFAULT_METHODS = ["gradient", "grad-cam"]

CSS = """
#explain-maps, #explain-overlays {min-height: 200px}
#explain-note {color: var(--error-text-color)}
"""


def theme() -> gr.themes.Base:
    """The default look with the system's fonts: the page loads nothing from outside."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show the library's one-line errors in the page (as an error notice)
    instead of the framework's generic one."""
    if _is_generator(fn):

        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except DeepInsideError as err:
                raise gr.Error(str(err), print_exception=False) from None

        return gen

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeepInsideError as err:
            raise gr.Error(str(err), print_exception=False) from None

    return call


def _is_generator(fn: Callable[..., Any]) -> bool:
    return inspect.isgeneratorfunction(fn)


def remove_folders(files: Iterable[str], workdir: Path) -> None:
    """Remove the result folders of files the page has shown: the framework
    serves its own copies (from its cache, emptied of files older than an
    hour), so ours would only pile up until the server stops."""
    for folder in {Path(f).parent for f in files}:
        remove_result_folder(folder, workdir)


def remove_result_folder(folder: Path, workdir: Path) -> None:
    """Remove ``folder`` if it is one of the server's own result folders."""
    if folder.parent == workdir:
        shutil.rmtree(folder, ignore_errors=True)


def build_app(server: Server) -> gr.Blocks:
    with gr.Blocks(
        title="deepinside",
        analytics_enabled=False,
        # Results and uploads older than an hour go, checked every ten minutes.
        delete_cache=(600, 3600),
    ) as app:
        gr.Markdown(
            f"## deepinside · {server.model.name}\n"
            "What an image classifier has learned and why it decides: saliency maps, "
            "localisation, class models (Simonyan et al. 2013, and what followed)."
        )
        with gr.Tabs():
            with gr.Tab("Explain a photo", id="explain"):
                _explain_tab(server)
            with gr.Tab("Visualise a class", id="classmodel"):
                _classmodel_tab(server)
            with gr.Tab("Compare", id="compare"):
                _compare_tab(server)
    app.queue(default_concurrency_limit=1, max_size=64)
    return app


def methods_for(model: Any) -> list[str]:
    """The methods that apply to the served model (the attention methods for a
    transformer; Grad-CAM where a feature layer is found)."""
    return [name for name, method in METHODS.items() if unmet_need(method, model) is None]


def _class_box(server: Server, elem_id: str, label: str = "Class") -> gr.Dropdown:
    return gr.Dropdown(
        [TOP1, *server.class_choices],
        value=TOP1,
        label=label,
        info="type a name, an index or a WordNet id",
        allow_custom_value=True,
        filterable=True,
        elem_id=elem_id,
    )


def _option_control(control: Control) -> gr.components.Component:
    """The page's control for one declared method option."""
    common: dict[str, Any] = {"label": control.label, "elem_id": control.elem_id}
    if control.kind == "choice":
        return gr.Radio(list(control.choices), value=control.default, **common)
    number = None if isinstance(control.default, str) else control.default
    if control.kind == "slider":
        assert control.low is not None and control.high is not None
        return gr.Slider(control.low, control.high, value=number, step=control.step, **common)
    if control.kind == "number":
        return gr.Number(number, precision=0 if control.number is int else None, **common)
    return gr.Textbox("" if control.default is None else str(control.default), max_lines=1, **common)


def _method_options(controls: Sequence[Control]) -> tuple[gr.Radio, gr.Radio, list[gr.components.Component]]:
    """The channel reduction, the localisation preset, and a control for each
    option the offered methods declare (a row per method)."""
    with gr.Accordion("Method options", open=False):
        with gr.Row():
            reduce = gr.Radio(list(explain.REDUCTIONS), value="max-abs", label="channel reduction")
            localization = gr.Radio(list(LOCALIZATION_PRESETS), value="default", label="localisation")
        made: list[gr.components.Component] = []
        for method in dict.fromkeys(c.method for c in controls):
            with gr.Row():
                made += [_option_control(c) for c in controls if c.method == method]
    return reduce, localization, made


def _offered(server: Server) -> list[str]:
    return methods_for(server.model)


def _explain_tab(server: Server) -> None:
    photo = gr.State(None)
    found = gr.State(None)
    offered = _offered(server)
    controls = controls_for([METHODS[m] for m in offered], server.limits)
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(
                label="Upload a photo",
                file_types=list(ACCEPTED_SUFFIXES),
                type="filepath",
                elem_id="explain-upload",
            )
            note = gr.Markdown("", elem_id="explain-note")
            sample = gr.Dropdown(
                list(SAMPLE_PHOTOS), value=None, label="…or pick a sample", elem_id="explain-sample"
            )
            shown = gr.Image(label="Photo", interactive=False, height=260, elem_id="explain-photo")
        with gr.Column(scale=1):
            predictions = gr.Label(
                num_top_classes=5, label="Top-5 predictions", elem_id="explain-predictions"
            )
            target = _class_box(server, "explain-class")
            methods = gr.CheckboxGroup(
                offered,
                value=[m for m in DEFAULT_METHODS if m in offered],
                label="Methods",
                elem_id="explain-methods",
            )
            reduce, localization, option_inputs = _method_options(controls)
            run = gr.Button("Explain", variant="primary", elem_id="explain-run")
    opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="overlay opacity", elem_id="explain-opacity")
    with gr.Row():
        maps = gr.Gallery(label="Maps", columns=4, height=300, object_fit="contain", elem_id="explain-maps")
        overlays = gr.Gallery(
            label="Overlays", columns=4, height=300, object_fit="contain", elem_id="explain-overlays"
        )
    with gr.Row():
        boxes = gr.Image(label="Localisation box", interactive=False, height=260, elem_id="explain-box")
        mask = gr.Image(label="Localisation mask", interactive=False, height=260, elem_id="explain-mask")
        files = gr.File(
            label="Downloads (raw map .npy, overlay PNG, the CLI's JSON)",
            file_count="multiple",
            elem_id="explain-files",
        )

    def loaded(picture: Any) -> Iterator[tuple[Any, ...]]:
        top = server.predict(picture)
        folder = server.result_folder()
        try:
            shown_file = PictureFiles(folder).new("photo", picture)
            yield picture, shown_file, {prediction_label(p): p.probability for p in top}, TOP1, ""
        finally:
            remove_result_folder(folder, server.workdir)

    @friendly
    def from_upload(path: str | None) -> Iterator[tuple[Any, ...]]:
        if not path:
            yield None, None, None, TOP1, ""
            return
        try:
            picture = read_upload(path, server.limits)
        except DeepInsideError as err:
            # One line beside the upload box; the photo, predictions and class stay as they were.
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), f"**{err}**"
            return
        yield from loaded(picture)

    @friendly
    def from_sample(name: str | None) -> Iterator[tuple[Any, ...]]:
        if not name:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield from loaded(sample_photo(name))

    @friendly
    def run_explain(
        picture: Any, choice: str, names: list[str], how: str, where: str, alpha: float, *values: object
    ) -> Iterator[tuple[Any, ...]]:
        chosen = explain.check_methods(names, server, method_settings(controls, values))
        seen: set[str] = set()
        try:
            for done in explain.explain(server, picture, server.resolve_class(choice), chosen, how, where):
                seen.update(done.files)
                yield done.grey_maps(), done.overlays(alpha), done.boxes, done.mask, done.files, done
        finally:
            remove_folders(seen, server.workdir)

    def restyle(done: explain.Explained | None, alpha: float) -> Iterator[Any]:
        if not done:
            yield gr.skip()
            return
        overlays = done.overlays(alpha)
        try:
            yield overlays
        finally:  # the run's folder went when it ended: these files would re-create it for good
            remove_folders([path for path, _ in overlays], server.workdir)

    loading = [photo, shown, predictions, target, note]
    upload.upload(from_upload, upload, loading, concurrency_id="saliency", concurrency_limit=SALIENCY_SLOTS)
    sample.change(from_sample, sample, loading, concurrency_id="saliency", concurrency_limit=SALIENCY_SLOTS)
    run.click(
        run_explain,
        [photo, target, methods, reduce, localization, opacity, *option_inputs],
        [maps, overlays, boxes, mask, files, found],
        api_name="explain",
        concurrency_id="saliency",
        concurrency_limit=SALIENCY_SLOTS,
    )
    opacity.release(restyle, [found, opacity], overlays, concurrency_limit=4, api_visibility="private")


def whole_pictures(label: str, elem_id: str, height: int) -> gr.Gallery:
    """A gallery of four cells a row, each picture whole within its cell (a
    square one never stretched into a strip the gallery crops), captioned below."""
    return gr.Gallery(
        label=label, columns=4, fit_columns=False, height=height, object_fit="contain", elem_id=elem_id
    )


def square_cells(pictures: list[tuple[str, str]]) -> gr.Gallery:
    """The class pictures two a row for one or two classes (a cell as large as
    fits the gallery's height), else four a row (eight fit without scrolling)."""
    return gr.Gallery(value=pictures, columns=2 if len(pictures) <= 2 else 4)


def _classmodel_tab(server: Server) -> None:
    jobs = classmodel.ClassJobs()
    first = presets.get("default")
    with gr.Row():
        with gr.Column(scale=1):
            classes = gr.Dropdown(
                server.class_choices,
                value=[server.class_choices[1]],
                multiselect=True,
                max_choices=server.limits.max_classes,
                label=f"Classes (at most {server.limits.max_classes})",
                info="type a name, an index or a WordNet id",
                elem_id="cm-classes",
            )
            preset = gr.Radio(
                sorted(presets.PRESETS),
                value="default",
                label="preset",
                info="default: recognisable pictures; convincing: surer ones, slower (give it 320 steps); "
                "paper: the paper's recipe",
            )
            with gr.Row():
                seed = gr.Number(0, precision=0, label="seed", elem_id="cm-seed")
                steps = gr.Number(
                    first.steps,
                    precision=0,
                    label=f"steps (at most {server.limits.max_steps})",
                    elem_id="cm-steps",
                )
                size = gr.Number(
                    server.model.preprocessing.input_size[0],
                    precision=0,
                    label=f"size (at most {server.limits.max_size})",
                    elem_id="cm-size",
                )
            with gr.Row():
                start = gr.Button("Visualise", variant="primary", elem_id="cm-run")
                stop = gr.Button("Stop", variant="stop", elem_id="cm-stop")
        with gr.Column(scale=2):
            status = gr.Markdown("", elem_id="cm-status")
            # Larger cells for one or two classes (square_cells).
            pictures = whole_pictures("Pictures", "cm-pictures", height=500)
            files = gr.File(
                label="Downloads (PNGs, logs, contact sheet, summary)",
                file_count="multiple",
                elem_id="cm-files",
            )

    @friendly
    def run_job(
        choices: list[str],
        name: str,
        seed_value: float,
        steps_value: float,
        size_value: float,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        job = classmodel.check_job(
            server, server.resolve_classes(choices), name, seed_value, steps_value, size_value
        )
        seen: set[str] = set()
        try:
            for view in jobs.run(server, request.session_hash or "", job):
                seen.update(view.files)
                seen.update(p for p, _ in view.pictures or [])
                shown = gr.skip() if view.pictures is None else square_cells(view.pictures)
                yield view.status, shown, view.files if view.finished else None
        finally:
            remove_folders(seen, server.workdir)

    def stop_job(request: gr.Request) -> None:
        if not jobs.stop(request.session_hash or ""):
            gr.Info("no class visualisation of yours is running")

    preset.change(
        lambda name: presets.get(name).steps, preset, steps, api_visibility="private", concurrency_limit=None
    )
    start.click(
        run_job,
        [classes, preset, seed, steps, size],
        [status, pictures, files],
        api_name="visualise",
        concurrency_id="classmodel",
        concurrency_limit=CLASSMODEL_SLOTS,
    )
    # The stop button must never wait behind the job it stops.
    stop.click(stop_job, None, None, api_name="stop", concurrency_limit=None, queue=False)


def _compare_tab(server: Server) -> None:
    limits = server.limits
    gr.Markdown(
        "Several methods on one photo, or one method on several photos: each map with its deletion and "
        "insertion AUC (Petsiuk et al. 2018) and, given the object's box, its pointing-game hit "
        "(Zhang et al. 2016)."
    )
    with gr.Row():
        with gr.Column(scale=1):
            uploads = gr.File(
                label=f"Photos (at most {limits.max_compare_photos})",
                file_count="multiple",
                file_types=list(ACCEPTED_SUFFIXES),
                type="filepath",
                elem_id="compare-upload",
            )
            samples = gr.Dropdown(
                list(SAMPLE_PHOTOS),
                value=None,
                multiselect=True,
                label="…or samples",
                elem_id="compare-sample",
            )
            offered = _offered(server)
            methods = gr.CheckboxGroup(
                offered,
                value=[m for m in ("gradient", "guided-backprop", "grad-cam") if m in offered],
                label="Methods",
                elem_id="compare-methods",
            )
            target = _class_box(server, "compare-class")
        with gr.Column(scale=1):
            typed = gr.Textbox(
                label="Object box in photo pixels: x0 y0 x1 y1, one per line",
                lines=2,
                elem_id="compare-boxes",
            )
            annotations = gr.File(
                label="…or an annotations JSON (the evaluate command's format)",
                file_types=[".json"],
                type="filepath",
            )
            steps = gr.Slider(10, 100, value=20, step=1, label="deletion/insertion steps")
            run = gr.Button("Compare", variant="primary", elem_id="compare-run")
    grid = whole_pictures("Maps", "compare-grid", height=520)
    table = gr.Dataframe(headers=compare.TABLE_HEADERS, label="Scores", elem_id="compare-table")

    @friendly
    def run_compare(
        paths: list[str] | None,
        names: list[str] | None,
        chosen: list[str],
        choice: str,
        boxes_text: str,
        annotation_path: str | None,
        del_steps: float,
    ) -> Iterator[tuple[Any, ...]]:
        photos = [read_upload(p, limits) for p in paths or []] + [sample_photo(n) for n in names or []]
        if len(photos) > limits.max_compare_photos:
            raise DeepInsideError(f"at most {limits.max_compare_photos} photos at once, got {len(photos)}")
        if len(photos) > 1 and len(chosen or []) > 1:
            raise DeepInsideError("compare several methods on one photo, or one method on several photos")
        methods_ = explain.check_methods(chosen, server)
        boxes = {}
        typed_boxes = compare.parse_boxes(boxes_text)
        for p in photos:
            name = compare.photo_name(p)
            if annotation_path:
                boxes[name] = compare.annotation_boxes(annotation_path, name, len(server.model.classes))
            elif typed_boxes:
                boxes[name] = typed_boxes
        scored = compare.compare(
            server.model, photos, methods_, server.resolve_class(choice), boxes, int(del_steps)
        )
        shown = PictureFiles(server.result_folder())
        several = len(photos) > 1
        grid_items = [(shown.new(s.caption(several), s.overlay), s.caption(several)) for s in scored]
        try:
            yield grid_items, [s.row() for s in scored]
        finally:
            remove_folders([p for p, _ in grid_items], server.workdir)

    run.click(
        run_compare,
        [uploads, samples, methods, target, typed, annotations, steps],
        [grid, table],
        api_name="compare",
        concurrency_id="compare",
        concurrency_limit=COMPARE_SLOTS,
    )
