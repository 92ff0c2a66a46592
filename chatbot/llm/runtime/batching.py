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

Here: the scheduler and its thread. The batch kinds are batch.py (dynamic), lone_decode.py and slot_batch.py;
a request's stream is streams.py, its sampling sampling.py.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import deque
from typing import Any, Literal

from chatbot.errors import ModelUnavailableError
from chatbot.llm.runtime.batch import Batch
from chatbot.llm.runtime.lone_decode import LoneBatch, LoneDecoder, prepare_cudagraph_thread
from chatbot.llm.runtime.sampling import Sampling
from chatbot.llm.runtime.slot_batch import SlotBatch
from chatbot.llm.runtime.streams import TokenStream

logger = logging.getLogger(__name__)

PREFILL_TOKENS = {"cuda": 16384, "cpu": 512}  # prompt tokens prefilled together at most (one prompt always fits)
_SCHEDULERS: weakref.WeakSet[BatchScheduler] = weakref.WeakSet()


@atexit.register
def _stop_schedulers() -> None:
    """At exit, let every scheduler finish its step: a thread killed inside a torch kernel aborts the process."""
    for scheduler in list(_SCHEDULERS):
        scheduler.close(wait_s=10)


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
        self._lone = None if lone_decode == "off" else LoneDecoder(model, static_cache_len, lone_decode == "compiled")
        self._slots = None
        if slot_decode != "off":
            from chatbot.llm.runtime.slot_decode import SlotDecoder

            self._slots = SlotDecoder(model, max_batch, static_cache_len, graphs=slot_decode == "graphs")
        self._waiting: deque[TokenStream] = deque()
        self._wake = threading.Condition()
        self._batch: Batch | None = None
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

    def warm_up(self) -> None:
        """Run short requests through each path so compilation and graph capture happen before the first customer."""
        for _ in range(2 if self._lone else 1):
            list(self.submit([1, 2, 3, 4], Sampling(max_new_tokens=4), frozenset(), timeout_s=900))
        if self._slots:
            pair = [self.submit([1, 2, 3, 4], Sampling(max_new_tokens=4), frozenset(), timeout_s=900) for _ in "ab"]
            for stream in pair:
                list(stream)

    def close(self, wait_s: float = 0.0) -> None:
        """Stop after the current step; answers still being written end with an error. Waits up to wait_s
        for the thread to stop."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if wait_s and threading.current_thread() is not self._thread:
            self._thread.join(wait_s)

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as e:  # broad: whatever stops this thread, no reader may wait on it forever
            logger.critical("the batching scheduler of %s stopped", self._model_name, exc_info=e)
            self._fail(self._orphans(), e)
        else:
            for stream in self._orphans():  # closed while answers were still being written
                stream.finish(ModelUnavailableError(f"The model '{self._model_name}' stopped serving."))

    def _orphans(self) -> list[TokenStream]:
        with self._wake:
            self._closed = True
            waiting, self._waiting = list(self._waiting), deque()
        running, self._batch = (self._batch.streams if self._batch else []), None
        return [*waiting, *running]

    def _serve(self) -> None:
        self._prepare_thread()
        while not self._closed:
            admitted = self._next_admissions()
            try:
                self._step(admitted)
            except Exception as e:  # broad: a model step can raise anything (torch, CUDA, transformers); every
                # request in flight gets the reason (_fail logs it with its traceback) and serving goes on
                self._fail([*admitted, *(self._batch.streams if self._batch else [])], e)
                self._batch = None

    def _prepare_thread(self) -> None:
        from chatbot.llm.runtime.cpu_threads import use_cores_in_this_thread

        if self._model.device.type == "cpu":  # this thread computes with the cores (see cpu_threads.py)
            cores = use_cores_in_this_thread(self._cpu_threads)
            logger.info("the batching scheduler of %s computes on %d CPU cores", self._model_name, cores)
        if self.compiled:
            try:
                prepare_cudagraph_thread()
            except (AttributeError, TypeError):  # torch's private state moved: a later torch may not need it, and
                # compilation failures surface at warm-up
                logger.warning("could not prepare CUDA-graph state for the scheduler thread", exc_info=True)

    def _step(self, admitted: list[TokenStream]) -> None:
        """One step: drop ended answers, then prefill the admitted requests or, with none, decode the batch."""
        import torch

        with torch.inference_mode():
            if self._batch is not None:
                self._batch = self._batch.without_finished()
            if admitted:
                self._batch = self._admit(admitted)
            elif self._batch is not None:
                self._batch.decode(self._model)
        self.steps += 1
        self.largest_batch = max(self.largest_batch, self.active)

    def _admit(self, admitted: list[TokenStream]) -> Batch:
        """Prefill the admitted requests and join them to the running batch, on the fastest path that fits."""
        if self._batch is None and len(admitted) == 1 and self._lone is not None and self._lone.fits(admitted[0]):
            return self._lone.prefill(admitted[0])
        if self._slots is not None and self._fit_slots(admitted):
            return SlotBatch.admit(self._slots, self._model, admitted, self._batch)
        running = self._batch.dynamic() if self._batch else None
        return Batch.prefill(self._model, admitted, running)

    def _fit_slots(self, admitted: list[TokenStream]) -> bool:
        """Whether these requests and the running ones can all decode in cache slots."""
        if self._slots is None or not (self._batch is None or isinstance(self._batch, (LoneBatch, SlotBatch))):
            return False
        streams = [*admitted, *(self._batch.streams if self._batch else [])]
        return all(self._slots.fits(len(s.prompt_ids), s.sampling.max_new_tokens) for s in streams)

    def _next_admissions(self) -> list[TokenStream]:
        with self._wake:
            while not self._waiting and self._batch is None and not self._closed:
                self._wake.wait()
            admitted: list[TokenStream] = []
            tokens = 0
            while self._waiting and self.active + len(admitted) < self.max_batch:
                nxt = self._waiting[0]
                if nxt.cancelled:
                    self._waiting.popleft().finish()
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
            stream.finish(ModelUnavailableError(message))
