"""Hybrid retrieval: dense (Chroma) + BM25 over code-aware tokens, fused by reciprocal rank.

Billing questions hinge on exact codes ("J9185", "D89.833") that embeddings blur, and on
wording that BM25 misses; llama-index's QueryFusionRetriever fuses the two rankings with RRF.
On top of that sits the one rule specific to this domain: a question about one product (or one
payer) is answered from that product's (payer's) documents first, because another product's
guide states a different dose, code or regimen with equal confidence.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache
from typing import Protocol

from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from assistant import config as config_mod
from assistant.config import Config
from index import store
from index.codes import codes_in, tokenize
from index.entities import payers, payers_in, products, products_in_question
from index.normalize import normalize
from index.sentences import quotable_sentences, sentence_id

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

    bm25s is handed pre-tokenized text joined by spaces with a whitespace token pattern, so the
    library does the scoring and we only decide what a token is.
    """

    def __init__(self, nodes: list[TextNode], top_k: int):
        from llama_index.retrievers.bm25 import BM25Retriever

        super().__init__()
        self._by_id = {n.node_id: n for n in nodes}
        shadow = [TextNode(id_=n.node_id, text=" ".join(tokenize(n.text)) or "_") for n in nodes]
        self._bm25 = BM25Retriever.from_defaults(
            nodes=shadow, similarity_top_k=min(top_k, len(shadow)), skip_stemming=True,
            token_pattern=r"\S+", language=None,  # stopwords: our tokenizer decides
        )

        self._doc_of = [n.metadata["source_id"] for n in nodes]
        self._top_k = top_k
        self._masks: dict[frozenset[str], object] = {}

    def mask(self, doc_ids: frozenset[str]):
        """The 0/1 weight mask of `doc_ids`' passages, built once per document set: a Python
        pass over every passage costs ~10 ms at 100k passages, on every scoped question."""
        mask = self._masks.get(doc_ids)
        if mask is None:
            import numpy as np

            if len(self._masks) >= 256:
                self._masks.clear()
            mask = self._masks[doc_ids] = np.fromiter((d in doc_ids for d in self._doc_of),
                                                      dtype=float, count=len(self._doc_of))
        return mask

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        tokens = tokenize(normalize(query_bundle.query_str))
        if not tokens:
            return []
        hits = self._bm25.retrieve(" ".join(tokens))
        return [NodeWithScore(node=self._by_id[h.node.node_id], score=h.score)
                for h in hits if h.score and h.score > 0]

    def scoped(self, doc_ids: frozenset[str]) -> ScopedBM25:
        return ScopedBM25(self, doc_ids)


class ScopedBM25(BaseRetriever):
    """The shared BM25 index, scoring only the passages of some documents (a bm25s weight mask)."""

    def __init__(self, parent: CodeAwareBM25, doc_ids: frozenset[str]):
        super().__init__()
        self._parent = parent
        self._mask = parent.mask(doc_ids)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        tokens = tokenize(normalize(query_bundle.query_str))
        inner = self._parent._bm25
        k = min(self._parent._top_k, int(self._mask.sum()))
        if not tokens or k == 0:
            return []
        query = [t for t in tokens if t in inner.bm25.vocab_dict]
        if not query:
            return []
        idx, scores = inner.bm25.retrieve([query], k=k, weight_mask=self._mask, show_progress=False)
        out = []
        for i, score in zip(idx[0], scores[0], strict=True):
            if score > 0:
                node_id = inner.corpus[int(i)]["node_id"] if isinstance(inner.corpus[int(i)], dict) else None
                node = self._parent._by_id.get(node_id) if node_id else None
                if node is not None:
                    out.append(NodeWithScore(node=node, score=float(score)))
        return out


class NormalizedQuery(BaseRetriever):
    """Feeds a retriever the normalized question, as the passages were normalized."""

    def __init__(self, inner: BaseRetriever):
        super().__init__()
        self._inner = inner

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # an embedding computed once per search travels with the bundle (see HybridRetriever.search)
        return self._inner.retrieve(QueryBundle(query_str=normalize(query_bundle.query_str),
                                                embedding=query_bundle.embedding))


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
    """Loads the live index once and answers `search` calls against it."""

    def __init__(self, cfg: Config | None = None):
        self.cfg = cfg or config_mod.load()
        manifest = store.read_manifest(self.cfg)
        if manifest is None:
            raise store.IndexMissingError("No index has been built yet: run `python -m index build`.")
        self.manifest = manifest
        try:
            self.collection = store.open_collection(store.client_for(self.cfg, manifest.build_id),
                                                    manifest.collection)
            got = read_all(self.collection)
        except Exception as exc:
            raise store.IndexMissingError(
                f"The index {manifest.build_id} cannot be read ({exc.__class__.__name__}: {exc}); "
                "run `python -m index build` to rebuild it."
            ) from None
        self.nodes = [TextNode(id_=i, text=d, metadata=m)
                      for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)]

    @cached_property
    def dense(self) -> BaseRetriever:
        return NormalizedQuery(self._vector_index.as_retriever(similarity_top_k=POOL))

    @cached_property
    def lexical(self) -> CodeAwareBM25:
        return CodeAwareBM25(self.nodes, top_k=POOL)

    @cached_property
    def fusion(self) -> QueryFusionRetriever:
        return QueryFusionRetriever(
            [self.dense, self.lexical], llm=MockLLM(), mode="reciprocal_rerank", num_queries=1,
            similarity_top_k=2 * POOL, use_async=False,
        )

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
        from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters

        filters = MetadataFilters(filters=[MetadataFilter(key="source_id", value=sorted(docs),
                                                          operator=FilterOperator.IN)])
        dense = NormalizedQuery(self._vector_index.as_retriever(similarity_top_k=POOL, filters=filters))
        fusion = QueryFusionRetriever([dense, self.lexical.scoped(docs)], llm=MockLLM(),
                                      mode="reciprocal_rerank", num_queries=1,
                                      similarity_top_k=2 * POOL, use_async=False)
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
        embedding = self._vector_index._embed_model.get_query_embedding(normalize(question))
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
        time (one Chroma read for all of them). An index without them scores by words alone."""
        if self.sentences is None:
            return
        import numpy as np

        ids = {p.node_id: [sentence_id(t) for _a, _b, t in quotable_sentences(p.quote, p.span, p.chunk_type)]
               for p in passages}
        wanted = sorted({i for v in ids.values() for i in v})
        if not wanted:
            return
        got = self.sentences.get(ids=wanted, include=["embeddings"])
        if not len(got["ids"]):
            return
        sims = np.asarray(got["embeddings"], dtype=np.float32) @ np.asarray(embedding, dtype=np.float32)
        by_id = dict(zip(got["ids"], map(float, sims), strict=True))
        for p in passages:
            p.sentence_sims = {i: by_id[i] for i in ids[p.node_id] if i in by_id}

    @cached_property
    def sentences(self):
        """The build's sentence collection, or None for an index built without one."""
        name = self.manifest.sentences
        if not name:
            return None
        try:
            return store.open_collection(store.client_for(self.cfg, self.manifest.build_id), name)
        except Exception as exc:
            if store.is_store_error(exc):
                return None
            raise

    @cached_property
    def _vector_index(self):
        from llama_index.core import VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore

        from index.embedding import get_embedder

        return VectorStoreIndex.from_vector_store(
            ChromaVectorStore(chroma_collection=self.collection), embed_model=get_embedder())


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
