"""Issue 16.1: the fake accepts image blocks in user messages exactly as the real Messages API does
(a base64 source whose bytes are the declared media type, at most 5 MB) and counts an image by its
size as the API bills it (width * height / 750 tokens, after the downscale to a 1568 px long edge /
about 1.15 megapixels), not by the length of its base64."""

from __future__ import annotations

import base64
import math
from typing import Any

import pytest

from revagent.engine.chart import Bar, render_chart
from tests.engine.test_fake_anthropic_strictness import HEADERS, body, post
from tests.fakes.anthropic_server import FakeAnthropic, image_tokens, reply, text

pytestmark = pytest.mark.timeout(60)


def _png(width: int = 1000, height: int = 600) -> bytes:
    bars = [Bar(t=i * 3_600_000, o=100 + i, h=102 + i, low=99 + i, c=101 + i, v=10) for i in range(30)]
    return render_chart("BTC 1h", bars, width_px=width, height_px=height)


def _image(data: str, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _with(block: dict[str, Any]) -> dict[str, Any]:
    return body(messages=[{"role": "user", "content": [{"type": "text", "text": "the chart"}, block]}])



@pytest.fixture(scope="module")
def png_b64() -> str:
    return base64.b64encode(_png()).decode()


async def test_a_png_chart_in_a_user_message_is_accepted_and_counted_by_its_pixels(
        fake: FakeAnthropic, png_b64: str) -> None:
    fake.script(reply(text("I see the chart")))
    status, answer = await post(fake, _with(_image(png_b64)))
    assert status == 200, answer
    # count_tokens: the image costs ceil(1000 * 600 / 750) = 800 tokens, not len(base64) / 3
    status, counted = await post_count(fake, _with(_image(png_b64)))
    assert status == 200, counted
    status, text_only = await post_count(fake, body(messages=[{"role": "user", "content": [
        {"type": "text", "text": "the chart"}]}]))
    assert counted["input_tokens"] - text_only["input_tokens"] in range(800, 800 + 40), (counted, text_only)
    assert len(png_b64) // 3 > 2000  # the base64 alone would have counted far more


def test_image_tokens_follow_the_api_formula_and_its_downscale() -> None:
    assert image_tokens(1000, 600) == 800
    assert image_tokens(200, 200) == math.ceil(40_000 / 750)
    # a long edge over 1568 px or over ~1.15 MP is scaled down first: the bill is capped near 1,600
    assert 1500 <= image_tokens(4000, 3000) <= 1600
    assert 1500 <= image_tokens(1200, 1200) <= 1600


BAD = [
    ("not base64", lambda b64: _image("not base64 at all!"), "invalid base64"),
    ("jpeg bytes declared png", lambda b64: _image(base64.b64encode(b"\xff\xd8\xff\xe0" + b"0" * 64).decode()),
     "Image does not match the provided media type image/png"),
    ("png bytes declared jpeg", lambda b64: _image(b64, "image/jpeg"),
     "Image does not match the provided media type image/jpeg"),
    ("over 5 MB", lambda b64: _image(base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * (5 * 1024 * 1024)).decode()),
     "image exceeds 5 MB maximum"),
    ("url source without url", lambda b64: {"type": "image", "source": {"type": "url"}}, "invalid image source"),
]


@pytest.mark.parametrize(("case", "make", "message"), BAD, ids=[b[0] for b in BAD])
async def test_malformed_images_get_400_like_the_real_api(fake: FakeAnthropic, png_b64: str, case: str,
                                                         make: Any, message: str) -> None:
    fake.script(reply("never"))
    status, answer = await post(fake, _with(make(png_b64)))
    assert status == 400, answer
    assert answer["error"]["type"] == "invalid_request_error"
    assert message in answer["error"]["message"], answer
    assert fake.pending == 1


async def post_count(fake: FakeAnthropic, payload: dict[str, Any]) -> tuple[int, Any]:
    import aiohttp

    payload = {k: v for k, v in payload.items() if k not in ("stream", "max_tokens")}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/v1/messages/count_tokens", json=payload, headers=HEADERS) as resp,
    ):
        return resp.status, await resp.json()
