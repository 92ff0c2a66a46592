"""The slot batch: the running requests, each in a static cache slot of a SlotDecoder (slot_decode.py); it moves
to the dynamic batch when a request too long for a slot arrives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatbot.llm.runtime.batch import Batch, pad_left
from chatbot.llm.runtime.lone_decode import LoneBatch
from chatbot.llm.runtime.streams import TokenStream

if TYPE_CHECKING:
    from chatbot.llm.runtime.slot_decode import SlotDecoder


class SlotBatch(Batch):
    """The running requests in cache slots: row i lives in slot i, so a step reads only the first slots."""

    def __init__(self, decoder: SlotDecoder, streams: list[TokenStream]) -> None:
        super().__init__(streams, None, None, decoder.tokens[: len(streams)], None)
        self.decoder = decoder

    @classmethod
    def admit(cls, decoder: SlotDecoder, model: Any, streams: list[TokenStream], running: Batch | None) -> SlotBatch:
        """Prefill the new requests together, then load each one's cache into the next free slot."""
        batch = running if isinstance(running, SlotBatch) else cls(decoder, [])
        if isinstance(running, LoneBatch):
            lone = running.decoder.cache.layers
            batch._load(running.streams[0], lone, 0, (0, running.length), running.tokens[0], running.live[0])
        fresh = Batch.prefill(model, streams, None)
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
        self.sample_and_emit(self.decoder.step(rows))
        self.decoder.tokens[:rows] = self.tokens

    def without_finished(self) -> Batch | None:
        """Drop ended rows; the remaining ones move down to the first slots, in order."""
        keep = self.end_finished()
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

    def dynamic(self) -> Batch:
        """This batch as an ordinary one (left-padded growing cache), for a request too long for a slot."""
        import torch

        from chatbot.llm.runtime.kv_cache import GrowingCache

        rows = len(self.streams)
        lengths = self.decoder.lengths[:rows]
        width = max(lengths)
        cache = GrowingCache()
        for index in range(len(self.decoder.cache.slot_layers)):  # type: ignore[union-attr]
            cached = [self.decoder.cached(row, index) for row in range(rows)]
            keys = torch.stack([pad_left(k, width, 1) for k, _ in cached])
            values = torch.stack([pad_left(v, width, 1) for _, v in cached])
            cache.update(keys, values, index)
        columns = torch.arange(width, device=self.decoder.tokens.device)
        lengths_t = torch.tensor(lengths, device=columns.device)
        mask = (columns[None, :] >= width - lengths_t[:, None]).long()
        tokens = self.decoder.tokens[:rows].clone()
        for slot in range(rows):
            self.decoder.free(slot)
        return Batch(self.streams, cache, mask, tokens, lengths_t)
