"""`python -m style_core CONTENT STYLE [STYLE ...] -o OUT`: argparse and a tqdm bar over `stylize()`.

Every StyleConfig field is a flag (generated from the dataclass, so the two never drift apart). Failures
end with one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path

from tqdm import tqdm

from .config import DEFAULT_PRESET, PRESET_HELP, PRESETS, ConfigError, StyleConfig, preset

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _parse_bool(text: str) -> bool:
    value = text.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


UNSET = "none"  # an optional setting's value that means "not set" (`--seed none`: a random seed)
_UNSET = object()


def _field_kind(annotation: object) -> tuple[type, bool, bool]:
    """(element type, is a tuple, may be None) for the annotations StyleConfig uses."""
    hint = typing.get_type_hints(StyleConfig)[annotation] if isinstance(annotation, str) else annotation
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and args:
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True, optional
    return hint, False, optional  # type: ignore[return-value]


def _or_unset(parse: typing.Callable[[str], object]) -> typing.Callable[[str], object]:
    """`parse`, also taking UNSET for None."""

    def parse_optional(text: str) -> object:
        return _UNSET if text.lower() == UNSET else parse(text)

    parse_optional.__name__ = getattr(parse, "__name__", "value")  # argparse names it in "invalid int value"
    return parse_optional


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (`--help` still shows the full usage)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m style_core",
        description="Repaint a photo in the style of one or more pictures (neural style transfer).",
    )
    parser.add_argument("content", nargs="?", help="the photo to repaint")
    parser.add_argument("styles", nargs="*", help="one or more style pictures")
    parser.add_argument("-o", "--output", default="out.png", help="output file (.png, .jpg, .webp)")
    parser.add_argument(
        "--preset", default=DEFAULT_PRESET, help=f"named settings ({', '.join(PRESETS)}; auto: decided by the faces)"
    )
    parser.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    parser.add_argument("--save-frames", metavar="DIR", help="also save every frame as a PNG in DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    hints = typing.get_type_hints(StyleConfig)
    for f in fields(StyleConfig):
        kind, is_tuple, optional = _field_kind(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        unset = f"; '{UNSET}' to unset" if optional else ""
        extra: dict = {"help": f"{f.metadata.get('help', '')} (default {default}{unset})", "default": None}
        parse = _parse_bool if kind is bool else kind
        extra.update(dest=f.name, type=_or_unset(parse) if optional else parse)
        if kind is bool:
            extra.update(metavar="BOOL")
        if is_tuple:
            extra.update(nargs="+")
        parser.add_argument(flag, **extra)
    return parser


def config_from_args(args: argparse.Namespace) -> StyleConfig:
    overrides = {}
    for f in fields(StyleConfig):
        value = getattr(args, f.name)
        if value is _UNSET or (isinstance(value, list) and _UNSET in value):
            overrides[f.name] = None
        elif value is not None:
            overrides[f.name] = tuple(value) if isinstance(value, list) else value
    return preset(args.preset, **overrides)


def main(argv: list[str] | None = None) -> int:
    from .api import plan_memory, stylize
    from .frames import StylizeError
    from .images import ImageError, load_image, save_image
    from .modes import AUTO, resolve_preset
    from .networks import warm_up
    from .weights import WeightsError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_presets:
        for name in PRESETS:
            print(f"{name:14s} {PRESET_HELP.get(name, '')}")
        return 0
    if not args.content or not args.styles:
        parser.error("give a content photo and at least one style picture")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        if args.preset == AUTO:  # faces in both pictures: portrait mode; otherwise balanced
            args.preset, why = resolve_preset(AUTO, args.content, args.styles[0])
            print(f"note: {why}", file=sys.stderr)
        config = config_from_args(args)
        if Path(args.output).suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            raise ImageError(f"cannot save '{args.output}': use .png, .jpg or .webp")
        # The pictures first: a bad one is refused in one line, before the weights are loaded and reported.
        content, styles = load_image(args.content), [load_image(s) for s in args.styles]
        if not args.quiet:
            print(warm_up(config), file=sys.stderr)  # which weights and device (loaded once, cached for the run)
            print(plan_memory(content, config).describe(), file=sys.stderr)  # the memory guard's plan
        frames = stylize(content, styles, config)
        bar = None
        frame = None
        painting = ""
        for frame in frames:
            if bar is None:
                bar = tqdm(total=frame.total_steps, unit="step", disable=args.quiet, file=sys.stderr)
            if frame.painting and frame.painting != painting:  # the next of several paintings: its steps from 0
                painting = frame.painting
                bar.reset(total=frame.total_steps)
                bar.set_description(painting)
            bar.update(frame.step - bar.n)
            bar.set_postfix(scale=f"{frame.scale}px", loss=f"{frame.losses.get('total', float('nan')):.4g}")
            if frame.message:
                tqdm.write(f"note: {frame.message}", file=sys.stderr)
            if args.save_frames:
                save_image(frame.image, Path(args.save_frames) / f"frame_{frame.step:05d}.png")
        if bar is not None:
            bar.close()
        if frame is None:
            raise StylizeError("the run produced no picture")
        path = save_image(frame.image, args.output)
        if frame.identity is not None:
            from .portrait.faces import describe_identity

            print(describe_identity(frame.identity))
        print(f"saved {path} ({frame.image.width}x{frame.image.height}, {frame.step} steps, {frame.elapsed:.1f} s)")
        return 0
    except (ImageError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (StylizeError, WeightsError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
