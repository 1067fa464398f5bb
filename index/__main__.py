"""Command line for the index layer.

    python -m index build [--force] [--quiet]   build or refresh the index (incremental, atomic)
    python -m index status                      what the live index holds
    python -m index import-cms FILE [FILE...]   add a CMS quarterly file to the reference data
    python -m index add FILE... [--payer P] [--product P] [--kind K] [--set FIELD=VALUE] [--yes]
                                                add a PDF, web page (.html), Word (.docx), text or
                                                Markdown file: shows the proposed metadata with the
                                                line each came from, writes on --yes (or on 'y' at
                                                the prompt) when the required fields are valid,
                                                then rebuilds the index (--no-build to skip)
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
    if report.status == "failed":
        return 1
    from index.embedding import prepare_query_encoder

    prepare_query_encoder()  # once per model and exporter (~5 s), then a checked cache file
    return 0


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
    if len(manifest.segments) > 1:
        print(f"  (base {manifest.base['id']} and {manifest.segments[-1]['chunks']} chunks of "
              f"{len(manifest.segments[-1]['documents'])} document(s) changed since)")
    for doc_id, meta in sorted(manifest.documents.items()):
        print(f"  {doc_id}: {meta['chunks']} chunks — {meta['title']}")
    return 0


def _unreadable(cfg, manifest) -> str:
    """Why the live build cannot be read, or "" when it can."""
    from index import store

    for segment in manifest.segments:
        if not cfg.server_mode and not (store.index_root(cfg) / "builds" / segment["id"]).is_dir():
            return f"the directory of its segment {segment['id']} is missing"
        try:
            count = store.open_collection(store.client_for(cfg, segment["id"]), segment["collection"]).count()
        except Exception as exc:
            if not store.is_store_error(exc):
                raise
            return f"{exc.__class__.__name__}: {exc}"
        if count != segment["chunks"]:
            return f"its segment {segment['id']} holds {count} chunks, the manifest lists {segment['chunks']}"
    return ""


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    """The fields the person set on the command line (a flag or --set field=value)."""
    out = {}
    for item in args.set or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set takes FIELD=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    for name in ("payer", "kind", "title", "id"):
        if getattr(args, name, None):
            out[name] = getattr(args, name)
    if args.product:
        out["products"] = ",".join(args.product)
    return out


def _confirmed(args: argparse.Namespace, name: str) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print(f"{name}: proposal only; run again with --yes to add it (fix any field with --set FIELD=VALUE).")
        return False
    return input(f"Add {name} with these metadata? [y/N] ").strip().lower() in ("y", "yes")


def _add_one(path, cfg, args: argparse.Namespace) -> str:
    """Stage, show and (when confirmed and valid) write one file: "added", "shown" (not
    confirmed) or "failed"."""
    from pathlib import Path

    from index.ingest import IngestError, commit, stage

    try:
        staged = stage(Path(path), cfg.sources_dir, _overrides(args), max_bytes=cfg.max_upload_mb * 2**20)
    except (IngestError, ValueError) as exc:
        print(f"Not added: {exc}", file=sys.stderr)
        return "failed"
    print(f"{staged.name} ({staged.extracted.file_type}, {len(staged.extracted.pages)} page(s), "
          f"{staged.extracted.tables} table(s), {len(staged.extracted.text):,} characters):")
    print(staged.proposal.render())
    for note in staged.notes:
        print(f"  note: {note}")
    if staged.same_revision:
        print(f"Not added: {staged.name}: {staged.same_revision}.", file=sys.stderr)
        return "failed"
    if staged.problems():
        print(f"Not added: {staged.name}: {'; '.join(staged.problems())}. Fix them with --set FIELD=VALUE "
              "(or --payer/--product/--kind).", file=sys.stderr)
        return "failed"
    if not _confirmed(args, staged.name):
        return "shown"
    try:
        target = commit(staged, cfg.sources_dir)
    except IngestError as exc:
        print(f"Not added: {exc}", file=sys.stderr)
        return "failed"
    print(f"Added {target.name} (original kept as documents/originals/{target.stem}{staged.path.suffix.lower()}).")
    return "added"


def _add(args: argparse.Namespace) -> int:
    cfg = config.load()
    outcome = [_add_one(f, cfg, args) for f in args.files]
    added, failed = outcome.count("added"), outcome.count("failed")
    if added and not args.no_build:
        status = _build(argparse.Namespace(force=False, quiet=False))
        return status or (1 if failed else 0)
    return 1 if failed else 0


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
    a = sub.add_parser("add", help="add PDF, HTML, DOCX, text or Markdown files to the corpus")
    a.add_argument("files", nargs="+", metavar="FILE")
    a.add_argument("--payer", help="payer id (sources/reference/payers.yaml)")
    a.add_argument("--product", action="append", help="product id (repeat for several)")
    a.add_argument("--kind", help="payer-policy | billing-guide | reference")
    a.add_argument("--title")
    a.add_argument("--id", help="the document id (lowercase letters, digits, hyphens)")
    a.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="set any proposed field, e.g. --set effective=2026-07-01 --set policy_number=CP.PHAR.481")
    a.add_argument("--yes", action="store_true", help="add without asking when the metadata are valid")
    a.add_argument("--no-build", action="store_true", help="write the documents, do not rebuild the index")
    a.set_defaults(func=_add)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
