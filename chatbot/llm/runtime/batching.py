"""Continuous batching over one in-process model: concurrent requests share every forward pass.

One scheduler thread owns the model. Between two decode steps it admits waiting requests: their prompts are
prefilled together (left-padded) and their key/value caches joined to the running batch, so a new customer
waits at most one step for their first token, never for another answer to finish. Each request streams its
own tokens and has its own sampling settings; a request that ends, or whose reader goes away, leaves the
batch at the next step and frees its slot.

How many prompt tokens one prefill takes depends on the device (PREFILL_TOKENS): a GPU prefills many prompts
together about as fast as one; a CPU is already saturated by one prompt of a few hundred tokens, so there long
prompts are prefilled one at a time (first tokens come one after another instead of all after the last, and
shorter prompts are not padded to the longest).

On CUDA a lone request can decode through a static cache and a compiled, CUDA-graph-replayed forward
(`lone_decode="compiled"`): one customer gets the card's speed without Python overhead per layer. When a second
request arrives, the lone request's cache is copied into the batch and both go on together. With
`slot_decode="graphs"` that batch keeps each answer in a static cache slot and replays one captured CUDA graph
per batch shape (chatbot/llm/runtime/slot_decode.py); answers too long for a slot go to the dynamic batch.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import weakref
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from chatbot.errors import ModelUnavailableError

if TYPE_CHECKING:
    from chatbot.llm.runtime.slot_decode import SlotDecoder

logger = logging.getLogger(__name__)

_END = object()
PREFILL_TOKENS = {"cuda": 16384, "cpu": 512}  # prompt tokens prefilled together at most (one prompt always fits)
_SCHEDULERS: weakref.WeakSet[BatchScheduler] = weakref.WeakSet()


@atexit.register
def _stop_schedulers() -> None:
    """At exit, let every scheduler finish its step: a thread killed inside a torch kernel aborts the process."""
    for scheduler in list(_SCHEDULERS):
        scheduler.close(wait_s=10)


@dataclass(frozen=True)
class Sampling:
    """How one request picks its tokens: temperature 0 is greedy."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0


@dataclass(eq=False)
class TokenStream:
    """One request's generated token ids, in order, as the scheduler produces them.

    Iterating blocks until the next token; closing the stream (or leaving the loop early) cancels the request.
    """

    prompt_ids: list[int]
    sampling: Sampling
    eos_ids: frozenset[int]
    timeout_s: float = 600.0
    generated: list[int] = field(default_factory=list)
    _tokens: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def __iter__(self) -> Iterator[int]:
        try:
            while True:
                try:
                    item = self._tokens.get(timeout=self.timeout_s)
                except queue.Empty:
                    raise ModelUnavailableError(f"No token from the model in {self.timeout_s:.0f} s.") from None
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _emit(self, token: int) -> bool:
        """Record a sampled token; False once the request is complete."""
        if token in self.eos_ids:
            return False
        self.generated.append(token)
        self._tokens.put(token)
        return len(self.generated) < self.sampling.max_new_tokens

    def _finish(self, error: BaseException | None = None) -> None:
        self._tokens.put(error if error is not None else _END)


class BatchScheduler:
    """Runs every request for one model through a shared, continuously refilled batch."""

    def __init__(
        self,
        model: Any,
        *,
        model_name: str,
        max_batch: int = 16,
        prefill_tokens: int | None = None,
        lone_decode: Literal["off", "static", "compiled"] = "off",
        slot_decode: Literal["off", "eager", "graphs"] = "off",
        static_cache_len: int = 8192,
        cpu_threads: int | None = None,
    ) -> None:
        self._model = model
        self._cpu_threads = cpu_threads
        self._model_name = model_name
        self.max_batch = max_batch
        self.prefill_tokens = prefill_tokens or PREFILL_TOKENS.get(model.device.type, PREFILL_TOKENS["cuda"])
        self._lone = None if lone_decode == "off" else _LoneDecoder(model, static_cache_len, lone_decode == "compiled")
        self._slots = None
        if slot_decode != "off":
            from chatbot.llm.runtime.slot_decode import SlotDecoder

            self._slots = SlotDecoder(model, max_batch, static_cache_len, graphs=slot_decode == "graphs")
        self._waiting: deque[TokenStream] = deque()
        self._wake = threading.Condition()
        self._batch: _Batch | None = None
        self.steps = 0
        self.largest_batch = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ragdesk-batcher", daemon=True)
        self._thread.start()
        _SCHEDULERS.add(self)

    def submit(
        self, prompt_ids: list[int], sampling: Sampling, eos_ids: frozenset[int], timeout_s: float = 600.0
    ) -> TokenStream:
        if not prompt_ids:
            raise ValueError("a request needs at least one prompt token")
        stream = TokenStream(list(prompt_ids), sampling, eos_ids, timeout_s)
        with self._wake:
            if self._closed:
                raise ModelUnavailableError(f"The model '{self._model_name}' is not serving. Please try again.")
            self._waiting.append(stream)
            self._wake.notify()
        return stream

    @property
    def compiled(self) -> bool:
        """Whether a lone request decodes through the compiled, CUDA-graph step."""
        return self._lone is not None and self._lone.compiled

    @property
    def batch_graphs(self) -> bool:
        """Whether concurrent answers decode in cache slots through captured CUDA graphs."""
        return self._slots is not None and self._slots.graphs

    @property
    def active(self) -> int:
        """Requests in the running batch (waiting ones not counted)."""
        batch = self._batch
        return len(batch.streams) if batch else 0

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as e:  # never leave readers waiting on a dead thread
            logger.critical("the batching scheduler of %s stopped", self._model_name, exc_info=e)
            self._fail(self._orphans(), e)
        else:
            for stream in self._orphans():  # closed while answers were still being written
                stream._finish(ModelUnavailableError(f"The model '{self._model_name}' stopped serving."))

    def _orphans(self) -> list[TokenStream]:
        with self._wake:
            self._closed = True
            waiting, self._waiting = list(self._waiting), deque()
        running, self._batch = (self._batch.streams if self._batch else []), None
        return [*waiting, *running]

    def _serve(self) -> None:
        import torch

        from chatbot.llm.runtime.cpu_threads import use_cores_in_this_thread

        if self._model.device.type == "cpu":  # this thread computes with the cores (see chatbot/llm/runtime/cpu_threads.py)
            cores = use_cores_in_this_thread(self._cpu_threads)
            logger.info("the batching scheduler of %s computes on %d CPU cores", self._model_name, cores)
        if self.compiled:
            try:
                _prepare_cudagraph_thread()
            except Exception:  # a later torch may not need it; compilation failures surface at warm-up
                logger.warning("could not prepare CUDA-graph state for the scheduler thread", exc_info=True)
        while not self._closed:
            admitted = self._next_admissions()
            try:
                with torch.inference_mode():
                    if self._batch is not None:
                        self._batch = self._batch.without_finished()
                    if admitted:
                        self._batch = self._admit(admitted)
                    elif self._batch is not None:
                        self._batch.decode(self._model)
                self.steps += 1
                self.largest_batch = max(self.largest_batch, self.active)
            except Exception as e:  # the model failed: every request in flight gets the reason, serving goes on
                self._fail([*admitted, *(self._batch.streams if self._batch else [])], e)
                self._batch = None

    def close(self, wait_s: float = 0.0) -> None:
        """Stop after the current step; answers still being written end with an error. Waits up to wait_s
        for the thread to stop."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if wait_s and threading.current_thread() is not self._thread:
            self._thread.join(wait_s)

    def _fits_lone(self, stream: TokenStream) -> bool:
        return self._lone is not None and self._lone.fits(stream)

    def _admit(self, admitted: list[TokenStream]) -> _Batch:
        """Prefill the admitted requests and join them to the running batch, on the fastest path that fits."""
        if self._batch is None and len(admitted) == 1 and self._fits_lone(admitted[0]):
            return self._lone.prefill(admitted[0])  # type: ignore[union-attr]
        if self._fit_slots(admitted):
            return _SlotBatch.admit(self._slots, self._model, admitted, self._batch)  # type: ignore[arg-type]
        running = self._batch.dynamic() if self._batch else None
        return _Batch.prefill(self._model, admitted, running)

    def _fit_slots(self, admitted: list[TokenStream]) -> bool:
        """Whether these requests and the running ones can all decode in cache slots."""
        if self._slots is None or not (self._batch is None or isinstance(self._batch, (_LoneBatch, _SlotBatch))):
            return False
        streams = [*admitted, *(self._batch.streams if self._batch else [])]
        return all(self._slots.fits(len(s.prompt_ids), s.sampling.max_new_tokens) for s in streams)

    def warm_up(self) -> None:
        """Run short requests through each path so compilation and graph capture happen before the first customer."""
        for _ in range(2 if self._lone else 1):
            list(self.submit([1, 2, 3, 4], Sampling(max_new_tokens=4), frozenset(), timeout_s=900))
        if self._slots:
            pair = [self.submit([1, 2, 3, 4], Sampling(max_new_tokens=4), frozenset(), timeout_s=900) for _ in "ab"]
            for stream in pair:
                list(stream)

    def _next_admissions(self) -> list[TokenStream]:
        with self._wake:
            while not self._waiting and self._batch is None and not self._closed:
                self._wake.wait()
            admitted: list[TokenStream] = []
            tokens = 0
            while self._waiting and self.active + len(admitted) < self.max_batch:
                nxt = self._waiting[0]
                if nxt.cancelled:
                    self._waiting.popleft()._finish()
                    continue
                if admitted and tokens + len(nxt.prompt_ids) > self.prefill_tokens:
                    break
                tokens += len(self._waiting.popleft().prompt_ids)
                admitted.append(nxt)
            return admitted

    def _fail(self, streams: list[TokenStream], error: BaseException) -> None:
        import torch

        if isinstance(error, torch.cuda.OutOfMemoryError):
            free, total = torch.cuda.mem_get_info() if torch.cuda.is_available() else (0, 0)
            torch.cuda.empty_cache()
            message = (
                f"The model '{self._model_name}' ran out of GPU memory with {len(streams)} answers in progress "
                f"({free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB). Please try again; an operator can "
                "lower RAGDESK_LLM__LOCAL__MAX_BATCH or the context window."
            )
        else:
            message = f"The model '{self._model_name}' failed while generating. Please try again."
        logger.error("generation failed for %d requests: %s", len(streams), error, exc_info=error)
        for stream in streams:
            stream._finish(ModelUnavailableError(message))


class _Batch:
    """The running requests: one left-padded key/value cache, its attention mask and each row's next input."""

    def __init__(self, streams: list[TokenStream], cache: Any, mask: Any, tokens: Any, positions: Any) -> None:
        self.streams = streams
        self.cache = cache
        self.mask = mask  # [rows, columns]: 1 where a row has a real token in that cache column
        self.tokens = tokens  # [rows]: each row's last sampled token, the next step's input
        self.positions = positions  # [rows]: position id of that token
        self.live = [True] * len(streams)

    @classmethod
    def prefill(cls, model: Any, streams: list[TokenStream], running: _Batch | None) -> _Batch:
        import torch

        from chatbot.llm.runtime.kv_cache import GrowingCache

        device = model.device
        width = max(len(s.prompt_ids) for s in streams)
        ids = torch.zeros((len(streams), width), dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for row, stream in enumerate(streams):
            n = len(stream.prompt_ids)
            ids[row, width - n :] = torch.tensor(stream.prompt_ids, device=device)
            mask[row, width - n :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = GrowingCache()
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        new = cls(streams, cache, mask, ids[:, -1], mask.sum(-1))
        new._sample_and_emit(out.logits[:, -1, :])
        return new if running is None else running.joined(new)

    def dynamic(self) -> _Batch:
        """This batch with a growable cache (it has one already)."""
        return self

    def decode(self, model: Any) -> None:
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.streams), 1))], dim=-1)
        out = model(
            input_ids=self.tokens[:, None],
            attention_mask=self.mask,
            position_ids=self.positions[:, None],
            past_key_values=self.cache,
            use_cache=True,
        )
        self.positions = self.positions + 1
        self._sample_and_emit(out.logits[:, -1, :])

    def _sample_and_emit(self, logits: Any) -> None:
        import torch

        broken = torch.isnan(logits).any(dim=-1).tolist()  # a numerical fault: never stream its argmax as text
        chosen = _sample(logits, self.streams)
        self.tokens = chosen
        for row, (stream, token) in enumerate(zip(self.streams, chosen.tolist(), strict=True)):
            if broken[row]:
                logger.error("the model's output for one answer was not a number; that answer was stopped")
                stream._finish(ModelUnavailableError("The model failed while writing this answer. Please try again."))
                self.live[row] = False
            elif stream.cancelled or not stream._emit(token):
                self.live[row] = False

    def without_finished(self) -> _Batch | None:
        """Drop rows that ended or were cancelled, then the cache columns no remaining row uses."""
        import torch

        keep = self._end_finished()
        if keep is None:
            return self
        if not keep:
            return None
        index = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.streams = [self.streams[row] for row in keep]
        self.mask, self.tokens, self.positions = self.mask[index], self.tokens[index], self.positions[index]
        self.live = [True] * len(keep)
        unused = int(self.mask.any(dim=0).int().argmax())  # leading columns that are padding in every row
        if unused:
            self.mask = self.mask[:, unused:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, unused:], layer.values[:, :, unused:]
        return self

    def _end_finished(self) -> list[int] | None:
        """End the streams of rows that finished or were cancelled; the rows still live, or None if all are."""
        for row, stream in enumerate(self.streams):
            if self.live[row] and stream.cancelled:
                self.live[row] = False
        if all(self.live):
            return None
        for row, stream in enumerate(self.streams):
            if not self.live[row]:
                stream._finish()
        return [row for row, live in enumerate(self.live) if live]

    def joined(self, other: _Batch) -> _Batch:
        """One batch holding both: the shorter cache is left-padded to the longer one's width."""
        import torch

        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, width, 2), _pad_left(theirs.keys, width, 2)])
            mine.values = torch.cat([_pad_left(mine.values, width, 2), _pad_left(theirs.values, width, 2)])
        self.mask = torch.cat([_pad_left(self.mask, width, 1), _pad_left(other.mask, width, 1)])
        self.tokens = torch.cat([self.tokens, other.tokens])
        self.positions = torch.cat([self.positions, other.positions])
        self.streams = [*self.streams, *other.streams]
        self.live = [*self.live, *other.live]
        return self


class _LoneDecoder:
    """One request at a time through a static cache and a compiled decode step (CUDA graphs on CUDA)."""

    def __init__(self, model: Any, length: int, compiled: bool) -> None:
        import torch
        from transformers import StaticCache

        self.model = model
        self.length = length
        self.cache = StaticCache(config=model.config, max_cache_len=length)
        self.compiled = compiled
        self.step = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True) if compiled else model.forward

    def fits(self, stream: TokenStream) -> bool:
        return len(stream.prompt_ids) + stream.sampling.max_new_tokens + 1 <= self.length

    def prefill(self, stream: TokenStream) -> _LoneBatch:
        import torch

        device = self.model.device
        self.cache.reset()
        n = len(stream.prompt_ids)
        out = self.model(
            input_ids=torch.tensor([stream.prompt_ids], device=device),
            cache_position=torch.arange(n, device=device),
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        batch = _LoneBatch(self, stream, n)
        batch._sample_and_emit(out.logits[:, -1, :])
        return batch


def _prepare_cudagraph_thread() -> None:
    """Give this thread the thread-local state torch's CUDA-graph trees look for: torch before 2.13 sets it up
    only in the main thread (and autograd's), and fails an assertion in any other thread."""
    import torch

    try:
        from torch._inductor import cudagraph_trees
    except ImportError:
        return
    local = cudagraph_trees.local
    if hasattr(local, "tree_manager_containers"):
        return
    local.tree_manager_containers = {}
    local.tree_manager_locks = defaultdict(threading.Lock)
    torch._C._stash_obj_in_tls("tree_manager_containers", local.tree_manager_containers)
    torch._C._stash_obj_in_tls("tree_manager_locks", local.tree_manager_locks)


class _LoneBatch(_Batch):
    """A batch of one on the static cache; turns into an ordinary batch when company arrives."""

    def __init__(self, decoder: _LoneDecoder, stream: TokenStream, length: int) -> None:
        import torch

        device = decoder.model.device
        super().__init__([stream], None, None, None, torch.tensor([length], device=device))
        self.decoder = decoder
        self.length = length

    def decode(self, model: Any) -> None:
        import torch

        position = self.positions[:, None].clone()
        if self.decoder.compiled:
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs may be overwritten now
        out = self.decoder.step(
            input_ids=self.tokens[:, None].clone(),
            position_ids=position,
            cache_position=position[0],
            past_key_values=self.decoder.cache,
            use_cache=True,
        )
        logits = out.logits[:, -1, :].clone()
        self.positions = self.positions + 1
        self.length += 1
        self._sample_and_emit(logits)

    def dynamic(self) -> _Batch:
        import torch

        from chatbot.llm.runtime.kv_cache import GrowingCache

        cache = GrowingCache()
        layers: list[Any] = list(self.decoder.cache.layers)
        for index, layer in enumerate(layers):
            cache.update(layer.keys[:, :, : self.length].clone(), layer.values[:, :, : self.length].clone(), index)
        mask = torch.ones((1, self.length), dtype=torch.long, device=self.positions.device)
        return _Batch(self.streams, cache, mask, self.tokens, self.positions)

    def without_finished(self) -> _Batch | None:
        return self if self._end_finished() is None else None


class _SlotBatch(_Batch):
    """The running requests in cache slots: row i lives in slot i, so a step reads only the first slots."""

    def __init__(self, decoder: SlotDecoder, streams: list[TokenStream]) -> None:
        super().__init__(streams, None, None, decoder.tokens[: len(streams)], None)
        self.decoder = decoder

    @classmethod
    def admit(cls, decoder: SlotDecoder, model: Any, streams: list[TokenStream], running: _Batch | None) -> _SlotBatch:
        """Prefill the new requests together, then load each one's cache into the next free slot."""
        batch = running if isinstance(running, _SlotBatch) else cls(decoder, [])
        if isinstance(running, _LoneBatch):
            lone = running.decoder.cache.layers
            batch._load(running.streams[0], lone, 0, (0, running.length), running.tokens[0], running.live[0])
        fresh = _Batch.prefill(model, streams, None)
        width = fresh.mask.shape[1]
        for row, stream in enumerate(fresh.streams):
            columns = (width - len(stream.prompt_ids), width)
            batch._load(stream, fresh.cache.layers, row, columns, fresh.tokens[row], fresh.live[row])
        return batch

    def _load(
        self, stream: TokenStream, layers: Any, row: int, columns: tuple[int, int], token: Any, live: bool
    ) -> None:
        """Add a request whose cache is row `row`, columns [start, end) of `layers`."""
        start, end = columns
        cached = [(layer.keys[row, :, start:end], layer.values[row, :, start:end]) for layer in layers]
        self.decoder.load(len(self.streams), cached, token, end - start)
        self.streams.append(stream)
        self.live.append(live)

    def decode(self, model: Any) -> None:
        rows = len(self.streams)
        self._sample_and_emit(self.decoder.step(rows))
        self.decoder.tokens[:rows] = self.tokens

    def without_finished(self) -> _Batch | None:
        """Drop ended rows; the remaining ones move down to the first slots, in order."""
        keep = self._end_finished()
        if keep is None:
            return self
        for target, source in enumerate(keep):
            if source != target:
                self.decoder.move(source, target)
        for slot in range(len(keep), len(self.streams)):
            self.decoder.free(slot)
        self.streams = [self.streams[row] for row in keep]
        self.live = [True] * len(keep)
        return self if keep else None

    def dynamic(self) -> _Batch:
        """This batch as an ordinary one (left-padded growing cache), for a request too long for a slot."""
        import torch

        from chatbot.llm.runtime.kv_cache import GrowingCache

        rows = len(self.streams)
        lengths = self.decoder.lengths[:rows]
        width = max(lengths)
        cache = GrowingCache()
        for index in range(len(self.decoder.cache.slot_layers)):  # type: ignore[union-attr]
            cached = [self.decoder.cached(row, index) for row in range(rows)]
            keys = torch.stack([_pad_left(k, width, 1) for k, _ in cached])
            values = torch.stack([_pad_left(v, width, 1) for _, v in cached])
            cache.update(keys, values, index)
        columns = torch.arange(width, device=self.decoder.tokens.device)
        lengths_t = torch.tensor(lengths, device=columns.device)
        mask = (columns[None, :] >= width - lengths_t[:, None]).long()
        tokens = self.decoder.tokens[:rows].clone()
        for slot in range(rows):
            self.decoder.free(slot)
        return _Batch(self.streams, cache, mask, tokens, lengths_t)


def _pad_left(tensor: Any, width: int, dim: int) -> Any:
    import torch

    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _sample(logits: Any, streams: list[TokenStream]) -> Any:
    """Each row's next token under its own sampling settings (penalty on the answer's own tokens only)."""
    import torch

    logits = logits.float()
    for row, stream in enumerate(streams):
        penalty = stream.sampling.repetition_penalty
        if penalty != 1.0 and stream.generated:
            seen_ids = torch.tensor(stream.generated, device=logits.device)
            seen = logits[row, seen_ids]
            logits[row, seen_ids] = torch.where(seen < 0, seen * penalty, seen / penalty)
    chosen = logits.argmax(dim=-1)
    for row, stream in enumerate(streams):
        if stream.sampling.temperature > 0:
            chosen[row] = _nucleus(logits[row] / stream.sampling.temperature, stream.sampling.top_p)
    return chosen


def _nucleus(logits: Any, top_p: float) -> Any:
    import torch

    probs = torch.softmax(logits, dim=-1)
    ordered, order = probs.sort(descending=True)
    outside = ordered.cumsum(-1) - ordered > top_p
    ordered[outside] = 0
    return order[torch.multinomial(ordered / ordered.sum(), 1)[0]]
