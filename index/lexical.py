"""A build's lexical (BM25) index: built from the chunks' stored tokens, saved beside the build,
memory-mapped when a process opens it.

Reading every chunk back out of Chroma and re-tokenizing it to build BM25 made a 100k-chunk index
take ~30 s to open. bm25s saves its sparse matrix as .npy files and the nodes as a JSONL corpus,
and loads both memory-mapped, so opening costs milliseconds and a node is parsed only when it is
a hit. The tokens come from `index.codes.tokenize` (codes kept whole); bm25s is handed them as
token lists and only scores.
"""

from __future__ import annotations

import json
import os
import shutil
from functools import lru_cache
from pathlib import Path

from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

DOC_OF = "doc_of.json"  # the source document of each position (scoped searches mask by it)
EMPTY = "_"             # the token of a chunk without any (bm25s needs one per document)


class LexicalIndex:
    """BM25 over code-aware tokens, with each position's node and document."""

    def __init__(self, bm25, doc_of: list[str], nodes: list[TextNode] | None = None, corpus=None):
        self.bm25 = bm25
        self.doc_of = doc_of
        self._nodes = nodes  # kept in memory when built here...
        self._corpus = corpus  # ...or read from the memory-mapped corpus when loaded
        self._masks: dict[frozenset[str], object] = {}

    @classmethod
    def build(cls, nodes: list[TextNode], tokens: list[list[str]]) -> LexicalIndex:
        """An index of `nodes` held in memory (a build saved without one; tests)."""
        return cls(_bm25(tokens), [n.metadata["source_id"] for n in nodes], list(nodes))

    @classmethod
    def from_rows(cls, rows: list[dict], tokens: list[list[str]], doc_of: list[str]) -> LexicalIndex:
        """An index of stored corpus rows (index.records), to be saved: no node is made."""
        return cls(_bm25(tokens), doc_of, corpus=rows)

    def save(self, path: Path) -> None:
        """Write the index to `path` (a new directory), whole or not at all."""
        tmp = path.with_name(f".{path.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        corpus = self._corpus if self._corpus is not None else [
            node_to_metadata_dict(n) | {"node_id": n.node_id} for n in self._nodes or []]
        self.bm25.save(str(tmp), corpus=corpus, show_progress=False)
        (tmp / DOC_OF).write_text(json.dumps(self.doc_of), encoding="utf-8")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        import bm25s

        bm25 = bm25s.BM25.load(str(path), load_corpus=True, mmap=True, show_progress=False)
        doc_of = json.loads((path / DOC_OF).read_text(encoding="utf-8"))
        corpus, bm25.corpus = bm25.corpus, None  # with a corpus, bm25s returns its rows, not positions
        if len(doc_of) != len(corpus):
            raise ValueError(f"{path}: {len(doc_of)} documents for {len(corpus)} passages")
        return cls(bm25, doc_of, corpus=corpus)

    def __len__(self) -> int:
        return len(self.doc_of)

    def node(self, i: int) -> TextNode:
        if self._nodes is not None:
            return self._nodes[i]
        if isinstance(self._corpus, list):  # rows in memory (an index about to be saved)
            return metadata_dict_to_node(self._corpus[i])
        return _node_at(self._corpus, i)

    def nodes(self) -> list[TextNode]:
        """Every node, in index order (evaluations and tests; a search reads only its hits)."""
        return [self.node(i) for i in range(len(self))]

    def mask(self, doc_ids: frozenset[str]):
        """The 0/1 weight mask of `doc_ids`' passages, built once per document set: a Python
        pass over every passage costs ~10 ms at 100k passages, on every scoped question."""
        mask = self._masks.get(doc_ids)
        if mask is None:
            import numpy as np

            if len(self._masks) >= 256:
                self._masks.clear()
            mask = self._masks[doc_ids] = np.fromiter((d in doc_ids for d in self.doc_of),
                                                      dtype=float, count=len(self.doc_of))
        return mask

    def search(self, tokens: list[str], k: int, doc_ids: frozenset[str] | None = None) -> list[tuple[TextNode, float]]:
        """The top `k` passages for the query tokens (inside `doc_ids` when given), score > 0."""
        mask = self.mask(doc_ids) if doc_ids is not None else None
        k = min(k, int(mask.sum()) if mask is not None else len(self))
        query = [t for t in tokens if t in self.bm25.vocab_dict]
        if not query or k <= 0:
            return []
        idx, scores = self.bm25.retrieve([query], k=k, weight_mask=mask, show_progress=False, n_threads=1)
        return [(self.node(int(i)), float(s)) for i, s in zip(idx[0], scores[0], strict=True) if s > 0]


def _bm25(tokens: list[list[str]]):
    import bm25s

    bm25 = bm25s.BM25()
    bm25.index([t or [EMPTY] for t in tokens], show_progress=False)
    return bm25


@lru_cache(maxsize=8192)
def _node_at(corpus, i: int) -> TextNode:
    """A node of a mapped corpus, parsed once (the same hits come back question after question)."""
    return metadata_dict_to_node(corpus[i])
