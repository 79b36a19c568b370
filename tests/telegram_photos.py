"""The fake Bot API with sendPhoto, which the digest's chart is sent with.

It checks a photo as Telegram does: the file must be there and not
empty, at most 10 MB, and the caption at most 1,024 characters once its
HTML is parsed. Each photo is recorded among the fake's uploads with the
method "sendPhoto", and its caption in `captions`.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fake_telegram import (
    ApiError,
    FakeTelegram,
    FilePart,
    Upload,
    _chat,
    _check_html,
    _plain,
)

PHOTO_LIMIT = 10_000_000
CAPTION_LIMIT = 1024


@dataclass
class PhotoFakeTelegram(FakeTelegram):
    """FakeTelegram that also takes sendPhoto."""

    captions: list[str] = field(default_factory=list)

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {**super()._methods(), "sendPhoto": self._send_photo}

    def _send_photo(self, args: dict[str, Any]) -> dict[str, Any]:
        photo = args.get("photo")
        if not isinstance(photo, FilePart):
            raise ApiError(400, "Bad Request: there is no photo in the request")
        if not photo.data:
            raise ApiError(400, "Bad Request: file must be non-empty")
        if len(photo.data) > PHOTO_LIMIT:
            raise ApiError(400, "Bad Request: PHOTO_SAVE_FILE_INVALID")
        caption = str(args.get("caption") or "")
        if args.get("parse_mode") == "HTML":
            _check_html(caption)
            caption = _plain(caption)
        if len(caption.encode("utf-16-le")) // 2 > CAPTION_LIMIT:
            raise ApiError(400, "Bad Request: message caption is too long")
        chat_id = str(args["chat_id"])
        with self._changed:
            message_id = self.next_message_id
            self.next_message_id += 1
            self._uploads.append(
                Upload(
                    "sendPhoto", chat_id, None, None, photo.filename, photo.data, message_id, None
                )
            )
            self.captions.append(caption)
        size = {"file_id": f"photo-{message_id}", "file_unique_id": f"unique-{message_id}"}
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": self._bot_user(),
            "photo": [{**size, "width": 1000, "height": 360}],
            "caption": caption,
        }
