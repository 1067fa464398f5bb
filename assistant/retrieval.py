"""Hybrid retrieval: dense (Chroma) + BM25 over code-aware tokens, fused by reciprocal rank.

Billing questions hinge on exact codes ("J9185", "D89.833") that embeddings blur, and on
wording that BM25 misses; the two rankings are interleaved rank by rank (`Interleaved`).
On top of that sits the one rule specific to this domain: a question about one product (or one
payer) is answered from that product's (payer's) documents first, because another product's
guide states a different dose, code or regimen with equal confidence.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Protocol

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from assistant import config as config_mod
from assistant.config import Config
from index import store
from index.codes import codes_in, tokenize
from index.entities import payers, payers_in, products, products_in_question
from index.normalize import normalize
from index.sentences import quotable_sentences, sentence_id

if TYPE_CHECKING:
    from index.lexical import LexicalIndex

POOL = 40  # candidates per retriever before fusion: 100 cost 40% more per answer (Chroma fetch + node parsing) for the same dev-set results
_COMPARE_RE = re.compile(r"\b(?:vs\.?|versus|compare[ds]?|comparison|differ(?:ence|ent)?|both|between)\b", re.I)


@dataclass
class Passage:
    """One retrieved passage with everything a citation needs."""

    node_id: str
    doc_id: str
    title: str
    kind: str
    section: str
    chunk_type: str
    quote: str           # exact original text of the span
    span: tuple[int, int]
    header: str          # the table header of a table row ("" otherwise)
    products: list[str]      # products the passage itself names
    doc_products: list[str]  # products its document is about
    codes: list[str]
    payer: str
    effective: str
    reviewed: str
    price_quarter: str
    score: float
    rank: int = 0
    page: int = 0        # page of the original where the passage starts (a document added from a PDF), 0 = none
    why: list[str] = field(default_factory=list)  # which retrievers found it, entity tier
    # sentence_id -> cosine similarity of the sentence to the question (index.sentences)
    sentence_sims: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class QueryEntities:
    products: tuple[str, ...]
    payers: tuple[str, ...]
    codes: tuple[str, ...]
    comparison: bool


class Retriever(Protocol):
    """What the engine needs of a retriever (the hybrid one, or an eval's baseline)."""

    cfg: Config

    def search(self, question: str, top_k: int | None = None,
               entities: QueryEntities | None = None, exclude: frozenset[str] = frozenset()) -> list[Passage]: ...


def query_entities(question: str) -> QueryEntities:
    norm = normalize(question)
    return QueryEntities(
        products=tuple(products_in_question(norm)),
        payers=tuple(p for p in payers_in(norm) if p != "medicare"),
        codes=tuple(c.upper() for c in codes_in(norm)),
        comparison=bool(_COMPARE_RE.search(question)),
    )


def _split(value: str) -> list[str]:
    return [x for x in (value or "").split("|") if x]


def _passage(nws: NodeWithScore) -> Passage:
    m = nws.node.metadata
    return Passage(
        node_id=nws.node.node_id, doc_id=m["source_id"], title=m["title"], kind=m["kind"],
        section=m["section"], chunk_type=m["chunk_type"], quote=m["quote"],
        span=(int(m["span_start"]), int(m["span_end"])), header=m.get("header", ""),
        products=_split(m["products"]), doc_products=_split(m.get("doc_products", "")), codes=_split(m["codes"]), payer=m.get("payer", ""),
        effective=m.get("effective", ""), reviewed=m.get("reviewed", ""),
        price_quarter=m.get("price_quarter", ""), score=float(nws.score or 0.0), page=int(m.get("page") or 0),
    )


class CodeAwareBM25(BaseRetriever):
    """BM25 whose passages and queries go through the project's tokenizer (codes kept whole).

    The index (index.lexical) is saved with the build and memory-mapped here; bm25s scores the
    token lists, and we only decide what a token is.
    """

    def __init__(self, index: LexicalIndex, top_k: int, doc_ids: frozenset[str] | None = None):
        super().__init__()
        self.index = index
        self._top_k = top_k
        self._doc_ids = doc_ids

    @classmethod
    def from_nodes(cls, nodes: list[TextNode], top_k: int) -> CodeAwareBM25:
        """An index built in memory (a build saved without one, or a test's own nodes)."""
        from index.lexical import LexicalIndex

        return cls(LexicalIndex.build(nodes, [tokenize(n.text) for n in nodes]), top_k)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        tokens = tokenize(normalize(query_bundle.query_str))
        return [NodeWithScore(node=node, score=score)
                for node, score in self.index.search(tokens, self._top_k, self._doc_ids)]

    def scoped(self, doc_ids: frozenset[str]) -> CodeAwareBM25:
        """The same index, scoring only the passages of some documents (a bm25s weight mask)."""
        return CodeAwareBM25(self.index, self._top_k, doc_ids)


class NormalizedQuery(BaseRetriever):
    """Feeds a retriever the normalized question, as the passages were normalized."""

    def __init__(self, inner: BaseRetriever):
        super().__init__()
        self._inner = inner

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # an embedding computed once per search travels with the bundle (see HybridRetriever.search)
        return self._inner.retrieve(QueryBundle(query_str=normalize(query_bundle.query_str),
                                                embedding=query_bundle.embedding))


class ChromaNearest(BaseRetriever):
    """Dense search in one Chroma collection that asks Chroma for the nearest ids and distances
    only, and takes the passages from `nodes` (the build's own nodes by id: the lexical index holds
    every live passage). Asking Chroma for the texts and metadata too, as llama-index's vector
    store does, made each query 3-4x slower (2.4-6.4 ms against 0.8-1.5 ms over the 605 chunks)
    and parsing them back into nodes cost another ~2 ms an answer. The score is llama-index's
    ChromaVectorStore's, exp(-distance), so rankings are the same as through it. A hit `nodes`
    does not know (a masked document's old chunk in the base) is read from Chroma, as before."""

    def __init__(self, collection, top_k: int, docs: list[str] | None, nodes):
        super().__init__()
        self._collection, self._top_k, self._nodes = collection, top_k, nodes
        self._where = None if docs is None else {"source_id": {"$in": list(docs)}}

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        kwargs = {"where": self._where} if self._where else {}
        got = self._collection.query(query_embeddings=[query_bundle.embedding], n_results=self._top_k,
                                     include=["distances"], **kwargs)
        ids, distances = got["ids"][0], got["distances"][0]
        found = self._nodes(ids)
        if missing := [i for i in ids if i not in found]:
            from llama_index.core.vector_stores.utils import metadata_dict_to_node

            rows = self._collection.get(ids=missing, include=["documents", "metadatas"])
            found.update({i: metadata_dict_to_node(m, text=d)
                          for i, d, m in zip(rows["ids"], rows["documents"], rows["metadatas"], strict=True)})
        return [NodeWithScore(node=found[i], score=math.exp(-d)) for i, d in zip(ids, distances, strict=True) if i in found]


class SegmentedDense(BaseRetriever):
    """Dense search over a build's segments (index.store.Manifest): the base, without its masked
    (out-of-date) documents, and the delta; the hits merged by similarity, which both segments
    measure alike (the same model and metric)."""

    def __init__(self, parts: list[tuple[BaseRetriever, frozenset[str]]], top_k: int):
        super().__init__()
        self._parts, self._top_k = parts, top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits: list[NodeWithScore] = []
        for retriever, masked in self._parts:
            hits += [h for h in retriever.retrieve(query_bundle) if h.node.metadata.get("source_id") not in masked]
        hits.sort(key=lambda h: h.score or 0.0, reverse=True)
        return hits[:self._top_k]


class Interleaved(BaseRetriever):
    """The rankings of several retrievers taken rank by rank (the first retriever's passage first),
    each passage once, scored 1/(60 + rank).

    This is what the golden set was measured and tuned with. It began as llama-index's
    QueryFusionRetriever in reciprocal-rank mode, which sums a passage's scores across rankings by
    node hash; the BM25 side's nodes carried Chroma's bookkeeping keys in their metadata, so no
    passage was ever summed, and the fusion was this interleaving. When the saved BM25 index made
    the two sides' nodes equal, true RRF ranked worse (golden set hit@5 0.485 against 0.591, fact
    accuracy 0.920 against 0.926), so the interleaving is now said in code."""

    def __init__(self, retrievers: list[BaseRetriever], top_k: int):
        super().__init__()
        self._retrievers, self._top_k = retrievers, top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        rankings = [r.retrieve(query_bundle) for r in self._retrievers]
        out: list[NodeWithScore] = []
        seen: set[str] = set()
        for rank, row in enumerate(itertools.zip_longest(*rankings)):
            for hit in row:
                if hit is not None and hit.node.node_id not in seen:
                    seen.add(hit.node.node_id)
                    out.append(NodeWithScore(node=hit.node, score=1.0 / (60 + rank)))
        return out[:self._top_k]


READ_BATCH = 5000  # one unbounded collection.get fails past ~30k chunks ("too many SQL variables")


def read_all(collection) -> dict[str, list]:
    """Every chunk's id, text and metadata, read in pages."""
    total = collection.count()
    got: dict[str, list] = {"ids": [], "documents": [], "metadatas": []}
    for offset in range(0, total, READ_BATCH):
        page = collection.get(include=["documents", "metadatas"], limit=READ_BATCH, offset=offset)
        for key in got:
            got[key] += page[key]
    if len(set(got["ids"])) != total:
        raise RuntimeError(f"read {len(set(got['ids']))} distinct chunks of {total}")
    return got


class HybridRetriever:
    """Opens the live index once and answers `search` calls against it."""

    def __init__(self, cfg: Config | None = None):
        self.cfg = cfg or config_mod.load()
        manifest = store.read_manifest(self.cfg)
        if manifest is None:
            raise store.IndexMissingError("No index has been built yet: run `python -m index build`.")
        self.manifest = manifest
        from index.embedding import embedder_id

        if manifest.model_sha256 != (mine := embedder_id()):  # its vectors and the question's would not compare
            raise store.IndexMissingError(
                f"The index {manifest.build_id} was embedded by {manifest.model_sha256[:12]}…, this process embeds "
                f"questions with {mine[:12]}… (CART_EMBED_BACKEND / CART_EMBEDDER differ from the build's); "
                "run `python -m index build` with the same settings.")
        self.masked = frozenset(manifest.masked)
        try:
            # each segment's chunk and sentence collections; the base comes first
            self.segments = [(store.open_collection(self._client(s), s["collection"]),
                              store.open_collection(self._client(s), s["sentences"]) if s.get("sentences") else None)
                             for s in manifest.segments]
            self._lexical_index = self._open_lexical()
        except store.IndexMissingError:
            raise
        except Exception as exc:
            unreadable = store.is_store_error(exc) or isinstance(exc, ValueError)  # ValueError: a damaged BM25 index
            if not unreadable:
                raise
            raise store.IndexMissingError(
                f"The index {manifest.build_id} cannot be read ({exc.__class__.__name__}: {exc}); "
                "run `python -m index build` to rebuild it."
            ) from None

    def _client(self, segment: dict):
        return store.client_for(self.cfg, segment["id"])

    def _open_lexical(self) -> LexicalIndex:
        """The build's saved BM25 index; one built here from the chunk collections when the build
        saved none (an older build, or another machine's build on a Chroma server)."""
        from index.lexical import LexicalIndex

        path = store.index_root(self.cfg) / "lexical" / self.manifest.lexical if self.manifest.lexical else None
        if path is not None and path.is_dir():
            index = LexicalIndex.load(path)
            if len(index) != len(self.manifest.chunk_ids):
                raise ValueError(f"the saved BM25 index holds {len(index)} passages, the build {len(self.manifest.chunk_ids)}")
            return index
        nodes = []
        for i, (collection, _sentences) in enumerate(self.segments):
            got = read_all(collection)
            nodes += [TextNode(id_=n, text=d, metadata=m)
                      for n, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
                      if not (i == 0 and m["source_id"] in self.masked)]
        return CodeAwareBM25.from_nodes(nodes, POOL).index

    @cached_property
    def nodes(self) -> list[TextNode]:
        """Every passage of the build (evaluations and tests; a search reads only its hits)."""
        return self._lexical_index.nodes()

    @cached_property
    def dense(self) -> BaseRetriever:
        return self._dense(None)

    def _dense(self, docs: frozenset[str] | None) -> BaseRetriever:
        """Dense search over the segments, inside `docs` when given."""
        parts = []
        for i, (chunks, _sentences) in enumerate(self.segments):
            masked = self.masked if i == 0 else frozenset()
            scope = None if docs is None else sorted(docs - masked)
            if scope == []:
                continue
            # the masked documents' chunks are dropped after the search: fetch that many more
            extra = sum(m["chunks"] for d, m in self.manifest.base["documents"].items() if d in masked) if masked and scope is None else 0
            parts.append((ChromaNearest(chunks, POOL + min(extra, 1000), scope, self._nodes_by_id), masked))
        return NormalizedQuery(SegmentedDense(parts, POOL))

    def _nodes_by_id(self, ids: list[str]) -> dict[str, TextNode]:
        """The live passages of `ids` that the lexical index holds, by id."""
        at = self._positions
        return {i: self._lexical_index.node(at[i]) for i in ids if i in at}

    @cached_property
    def _positions(self) -> dict[str, int]:
        """Each live passage's position in the lexical index. A saved index holds the build's
        chunks in the manifest's order (one list of records makes both; checked here on a sample,
        and a mismatch reads the ids off the nodes instead); one built on load, its nodes' order."""
        index, ids = self._lexical_index, self.manifest.chunk_ids
        step = max(1, len(ids) // 32)
        if ids and len(ids) == len(index) and all(index.node(i).node_id == ids[i] for i in [*range(0, len(ids), step), len(ids) - 1]):
            return {node_id: i for i, node_id in enumerate(ids)}
        return {n.node_id: i for i, n in enumerate(index.nodes())}

    @cached_property
    def lexical(self) -> CodeAwareBM25:
        return CodeAwareBM25(self._lexical_index, top_k=POOL)

    @cached_property
    def fusion(self) -> Interleaved:
        return Interleaved([self.dense, self.lexical], 2 * POOL)

    def doc_products(self) -> dict[str, set[str]]:
        return {d: set(_split(m.get("doc_products", ""))) for d, m in self.manifest.documents.items()}

    def scopes(self, ents: QueryEntities) -> list[tuple[str, frozenset[str]]]:
        """Groups of documents a question is about: one per compared product, or one for the
        named payer (narrowed to the named product where the payer has several)."""
        owned = self.doc_products()
        payers = {d: m.get("payer", "") for d, m in self.manifest.documents.items()}

        def docs_of(pid: str) -> frozenset[str]:
            return frozenset(d for d, prods in owned.items() if pid in prods)

        if len(ents.products) > 1 and ents.comparison:
            return [(pid, docs_of(pid)) for pid in ents.products if docs_of(pid)]
        if ents.payers:
            docs = frozenset(d for d, p in payers.items() if p in ents.payers)
            if len(ents.products) == 1 and docs & docs_of(ents.products[0]):
                docs = docs & docs_of(ents.products[0])
            return [("payer", docs)] if docs else []
        if len(ents.products) == 1 and docs_of(ents.products[0]):
            return [(ents.products[0], docs_of(ents.products[0]))]
        return []

    def _scoped(self, question: QueryBundle, docs: frozenset[str]) -> list[NodeWithScore]:
        fusion = Interleaved([self._dense(docs), self.lexical.scoped(docs)], 2 * POOL)
        return fusion.retrieve(question)

    def search(self, question: str, top_k: int | None = None,
               entities: QueryEntities | None = None, exclude: frozenset[str] = frozenset()) -> list[Passage]:
        """Ranked passages for a question; the question's product/payer documents first.
        `exclude`: documents left out (revisions not in force on the date of service).

        A question about one product or payer is also searched inside that scope with the
        entity names taken out (inside Abecma's documents, "Abecma" tells nothing), and those
        results lead; a comparison interleaves each product's scoped results.
        """
        top_k = top_k or self.cfg.top_k
        question = (question or "").strip()
        if not question:
            return []
        ents = entities or query_entities(question)
        # One query embedding per search, shared by the global and the scoped dense searches:
        # the model is the largest cost of a turn, and inside a product's own documents the
        # product's name in the embedded text changes little (same dev-set results, measured).
        embedding = self.embed_model.get_query_embedding(normalize(question))
        fused = [p for n in self.fusion.retrieve(QueryBundle(question, embedding=embedding))
                 if (p := _passage(n)).doc_id not in exclude]
        scopes = [(name, docs - exclude) for name, docs in self.scopes(ents) if docs - exclude]
        if scopes:
            inner_q = QueryBundle(strip_entity_names(question) or question, embedding=embedding)
            lanes = [[_passage(n) for n in self._scoped(inner_q, docs)] for _, docs in scopes]
            lead: list[Passage] = []
            seen: set[str] = set()
            for row in itertools.zip_longest(*lanes):
                for p in row:
                    if p is not None and p.node_id not in seen:
                        p.why.append("scoped")
                        lead.append(p)
                        seen.add(p.node_id)
            fused = lead + [p for p in fused if p.node_id not in seen]
        ranked = order_by_codes(fused, ents)[:top_k]
        for i, p in enumerate(ranked, 1):
            p.rank = i
        self._score_sentences(ranked, embedding)
        return ranked

    def _score_sentences(self, passages: list[Passage], embedding: list[float]) -> None:
        """Each passage's sentences' similarity to the question, from the vectors stored at build
        time (one Chroma read per segment). An index without them scores by words alone."""
        import numpy as np

        ids = {p.node_id: [sentence_id(t) for _a, _b, t in quotable_sentences(p.quote, p.span, p.chunk_type)]
               for p in passages}
        wanted = sorted({i for v in ids.values() for i in v})
        vectors: dict[str, list[float]] = {}
        for _chunks, sentences in reversed(self.segments):  # the delta first: the base lacks its new sentences
            missing = [i for i in wanted if i not in vectors]
            if sentences is None or not missing:
                continue
            got = sentences.get(ids=missing, include=["embeddings"])
            vectors.update(zip(got["ids"], got["embeddings"], strict=True))
        if not vectors:
            return
        keys = list(vectors)
        sims = np.asarray([vectors[k] for k in keys], dtype=np.float32) @ np.asarray(embedding, dtype=np.float32)
        by_id = dict(zip(keys, map(float, sims), strict=True))
        for p in passages:
            p.sentence_sims = {i: by_id[i] for i in ids[p.node_id] if i in by_id}

    @cached_property
    def embed_model(self):
        from index.embedding import get_embedder

        return get_embedder()


def strip_entity_names(question: str) -> str:
    """The question without product and payer names (codes stay: they are content)."""
    out = _names_pattern(tuple(n for item in (*products(), *payers()) for n in item.names)).sub(" ", question)
    return re.sub(r"\s+", " ", out).strip(" ?,.")


@lru_cache(maxsize=8)
def _names_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    words = sorted({n for n in names if not re.fullmatch(r"[A-Z]?\d{4}[A-Z]?", n, re.I)}, key=len, reverse=True)
    return re.compile(r"(?i)(?<![a-z])(?:" + "|".join(map(re.escape, words)) + r")(?![a-z])")


def order_by_codes(passages: list[Passage], ents: QueryEntities) -> list[Passage]:
    """Stable re-ordering: a passage containing a code the question names comes first."""
    wanted = set(ents.codes)
    if not wanted:
        return passages
    hit = [p for p in passages if wanted & {c.upper() for c in p.codes}]
    return hit + [p for p in passages if p not in hit]
