"""Command line for the index layer.

    python -m index build [--force] [--quiet]   build or refresh the index (incremental, atomic)
    python -m index status                      what the live index holds
    python -m index import-cms FILE [FILE...]   add a CMS quarterly file to the reference data
"""

from __future__ import annotations

import argparse
import sys

from assistant import config


def _build(args: argparse.Namespace) -> int:
    from index.build import build

    try:
        report = build(force=args.force, quiet=args.quiet)
    except KeyboardInterrupt:
        print("Build interrupted; the previous index is still the live one.", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback: the live index is untouched
        print(f"Build failed: {exc}. The previous index is still the live one.", file=sys.stderr)
        return 1
    stream = sys.stderr if report.status == "failed" else sys.stdout
    print(report.message, file=stream)
    if report.skipped:
        print(f"{len(report.skipped)} source file(s) skipped (see messages above).", file=sys.stderr)
    return 1 if report.status == "failed" else 0


def _status(_args: argparse.Namespace) -> int:
    from index.store import IndexMissingError, read_manifest

    cfg = config.load()
    try:
        manifest = read_manifest(cfg)
    except IndexMissingError as exc:
        print(exc, file=sys.stderr)
        return 1
    if manifest is None:
        print("No index yet: run `python -m index build`.")
        return 1
    # The pointer can outlive its build (deleted or damaged files): check the build itself.
    problem = _unreadable(cfg, manifest)
    if problem:
        print(f"The live build {manifest.build_id} cannot be read ({problem}); "
              "run `python -m index build` to rebuild it.", file=sys.stderr)
        return 1
    print(f"Live build {manifest.build_id} (created {manifest.created}), {len(manifest.chunk_ids)} chunks:")
    for doc_id, meta in sorted(manifest.documents.items()):
        print(f"  {doc_id}: {meta['chunks']} chunks — {meta['title']}")
    return 0


def _unreadable(cfg, manifest) -> str:
    """Why the live build cannot be read, or "" when it can."""
    from index import store

    if not cfg.server_mode and not (store.index_root(cfg) / "builds" / manifest.build_id).is_dir():
        return "its directory is missing"
    try:
        count = store.open_collection(store.client_for(cfg, manifest.build_id), manifest.collection).count()
    except Exception as exc:
        if not store.is_store_error(exc):
            raise
        return f"{exc.__class__.__name__}: {exc}"
    if count != len(manifest.chunk_ids):
        return f"it holds {count} chunks, the manifest lists {len(manifest.chunk_ids)}"
    return ""


def _import_cms(argv: list[str]) -> int:
    from index import cms_import

    return cms_import.main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config.load()
    except config.ConfigError as exc:  # one line per bad value, exit status 2, no traceback
        print(exc, file=sys.stderr)
        return 2
    if argv[:1] == ["import-cms"]:
        return _import_cms(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build or refresh the index")
    b.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    b.add_argument("--quiet", action="store_true", help="print only the result line")
    b.set_defaults(func=_build)
    s = sub.add_parser("status", help="describe the live index")
    s.set_defaults(func=_status)
    sub.add_parser("import-cms", help="import a CMS payment limit file or NDC-HCPCS crosswalk")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
