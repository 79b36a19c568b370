"""Reply and signature stripping: plain-text splitting, HTML quote cutting and the hard cases."""

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from inscriptis import get_text

from mailbridge.quotes import ReplyParts, cut_html_quote, split_reply

CASES_DIR = Path(__file__).resolve().parent / "cases"


def _load_message(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def _non_blank_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


# --- contract ------------------------------------------------------------------


def test_split_reply_plain_text_unchanged() -> None:
    parts = split_reply("Hello,\n\nthe printer works again.\n\n")
    assert parts == ReplyParts(visible="Hello,\n\nthe printer works again.", quoted="")


def test_split_reply_crlf_normalised() -> None:
    parts = split_reply(
        "Done.\r\n\r\nOn Mon, 3 Mar 2025 at 10:00, Ann <ann@example.com> wrote:\r\n> Hi\r\n"
    )
    assert parts.visible == "Done."
    assert "\r" not in parts.quoted


def test_split_reply_only_quote_shows_full_text() -> None:
    text = "On Mon, 3 Mar 2025 at 10:00, Ann <ann@example.com> wrote:\n> Is it fixed?\n"
    parts = split_reply(text)
    assert parts.visible == text.rstrip()
    assert parts.quoted == ""


def test_split_reply_forward_without_comment_shows_full_text() -> None:
    text = (
        "---------- Forwarded message ---------\n"
        "From: Ann <ann@example.com>\nDate: Mon, 3 Mar 2025 10:00\n"
        "Subject: Invoice\nTo: Bob <bob@example.com>\n\nPlease pay.\n"
    )
    parts = split_reply(text)
    assert parts.visible == text.rstrip()
    assert parts.quoted == ""


def test_split_reply_empty_input() -> None:
    assert split_reply("") == ReplyParts(visible="", quoted="")


def test_split_reply_visible_trailing_whitespace_stripped() -> None:
    parts = split_reply("Thanks   \n\n> earlier text\n")
    assert parts.visible == "Thanks"


# --- ">" quotes ----------------------------------------------------------------


def test_trailing_quote_folded() -> None:
    parts = split_reply("Yes, please.\n\n> Shall we replace it?\n>\n> Support\n")
    assert parts.visible == "Yes, please."
    assert parts.quoted == "> Shall we replace it?\n>\n> Support"


def test_interleaved_reply_kept() -> None:
    text = "> First question?\nFirst answer.\n\n> Second question?\nSecond answer.\n"
    parts = split_reply(text)
    assert parts.visible == text.rstrip()


def test_interleaved_reply_trailing_quote_folded() -> None:
    text = (
        "On Mon, 3 Mar 2025 at 10:00, Ann <ann@example.com> wrote:\n"
        "> First question?\nFirst answer.\n\n> Second question?\nSecond answer.\n\n"
        "> Kind regards,\n> Ann\n"
    )
    parts = split_reply(text)
    assert parts.visible == "> First question?\nFirst answer.\n\n> Second question?\nSecond answer."
    assert parts.quoted.startswith("On Mon, 3 Mar 2025")
    assert parts.quoted.endswith("> Ann")


def test_bottom_posted_reply_folds_leading_quote() -> None:
    parts = split_reply("On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\nHello\n")
    assert parts.visible == "Hello"


def test_nested_quote_folded() -> None:
    text = "Agreed.\n\n> Sure.\n>\n>> On Mon, 3 Mar 2025, Ann wrote:\n>> Can we?\n"
    assert split_reply(text).visible == "Agreed."


# --- attribution lines -----------------------------------------------------------


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, Mar 3, 2025 at 10:00 AM Ann Example <ann@example.com> wrote:",
        "On Mon, Mar 3, 2025 at 10:00 AM Ann Example <\nann@example.com> wrote:",
        "On Mon, Mar 3, 2025 at 10:00 AM Ann Example\n<ann@example.com> wrote:",
        "Le lun. 3 mars 2025 à 10:00, Ann Example <ann@example.com>\na écrit :",
        "Am 03.03.2025 um 10:00 schrieb Ann Example <ann@example.com>:",
        "El lun, 3 mar 2025 a las 10:00, Ann Example (<ann@example.com>) escribió:",
        "Il giorno lun 3 mar 2025 alle ore 10:00 Ann Example <ann@example.com> ha scritto:",
        "Op ma 3 mrt. 2025 om 10:00 schreef Ann Example <ann@example.com>:",
        "Em seg., 3 de mar. de 2025 às 10:00, Ann Example <ann@example.com> escreveu:",
        "man. 3. mar. 2025 kl. 10:00 skrev Ann Example <ann@example.com>:",
        "ma 3.3.2025 klo 10.00 Ann Example (ann@example.com) kirjoitti:",
        "pon., 3 mar 2025 o 10:00 Ann Example <ann@example.com> napisał(a):",
        "po 3. 3. 2025 v 10:00 odesílatel Ann Example <ann@example.com> napsal:",
        "2025年3月3日(月) 10:00 Ann Example <ann@example.com>:",
        "在 2025年3月3日 10:00，Ann Example <ann@example.com> 写道：",
        "2025년 3월 3일 (월) 오전 10:00, Ann Example <ann@example.com>님이 작성:",
        "---- On Mon, 03 Mar 2025 10:00:00 +0300 ann@example.com wrote ----",
    ],
)
def test_attribution_folded(attribution: str) -> None:
    parts = split_reply(f"It works now.\n\n{attribution}\n\n> Please restart it.\n")
    assert parts.visible == "It works now."
    assert parts.quoted.startswith(attribution.split("\n")[0])


def test_quoted_attribution_folded() -> None:
    text = "Thanks!\n> On 7 Mar 2025, at 18:01, Ann <ann@example.com> wrote:\n>\n> Try again.\n"
    assert split_reply(text).visible == "Thanks!"


def test_attribution_without_quote_folds_history() -> None:
    text = (
        "Fixed, thanks.\n\nOn Mon, Mar 3, 2025 at 10:00 AM Ann <ann@example.com> wrote:\n\n"
        "Please send the logs.\n\nAnn\n"
    )
    assert split_reply(text).visible == "Fixed, thanks."


def test_sentence_starting_with_on_kept() -> None:
    text = "On your server run:\n\n    systemctl restart app\n\nThat should do it.\n"
    assert split_reply(text).visible == text.rstrip()


def test_reply_line_above_attribution_kept() -> None:
    text = (
        "I paid on 3 March 2025.\n"
        "On Mon, Mar 3, 2025 at 10:00 AM Ann <ann@example.com> wrote:\n> Paid?\n"
    )
    assert split_reply(text).visible == "I paid on 3 March 2025."


# --- Russian clients -------------------------------------------------------------


def test_russian_gmail_yandex_attribution_folded() -> None:
    text = (
        "Добрый день! Заказ получили, спасибо.\n\n"
        "пн, 3 мар. 2025 г. в 10:00, Иван <ivan@example.ru>:\n\n"
        "> Отправили заказ сегодня утром.\n>\n> Иван\n"
    )
    parts = split_reply(text)
    assert parts.visible == "Добрый день! Заказ получили, спасибо."
    assert parts.quoted.startswith("пн, 3 мар. 2025 г. в 10:00, Иван <ivan@example.ru>:")


def test_russian_outlook_header_block_folded() -> None:
    text = (
        "Ошибка осталась, прикладываю снимок экрана.\n\n"
        "С уважением,\nОльга\n\n"
        "От: Служба поддержки <support@example.com>\n"
        "Отправлено: 3 марта 2025 г. 10:00\n"
        "Кому: Ольга <olga@example.ru>\n"
        "Тема: RE: [#12] Ошибка при входе\n\n"
        "Попробуйте очистить кэш браузера.\n"
    )
    parts = split_reply(text)
    assert parts.visible == "Ошибка осталась, прикладываю снимок экрана.\n\nС уважением,\nОльга"
    assert parts.quoted.startswith("От: Служба поддержки")
    assert "Попробуйте очистить кэш" not in parts.visible


def test_russian_thunderbird_attribution_folded() -> None:
    text = "Всё заработало.\n\n03.03.2025 10:00, Иван пишет:\n> Перезагрузите роутер.\n"
    parts = split_reply(text)
    assert parts.visible == "Всё заработало."
    assert parts.quoted.startswith("03.03.2025 10:00, Иван пишет:")


@pytest.mark.parametrize(
    "attribution",
    [
        "3 марта 2025 г., в 10:00, Иван Петров <ivan@example.ru> написал(а):",
        "Понедельник, 3 марта 2025, 10:00 +03:00 от Иван <ivan@example.ru>:",
        '03.03.2025 10:00 пользователь "Иван" <ivan@example.ru> написал:',
    ],
)
def test_russian_attribution_variants_folded(attribution: str) -> None:
    text = f"Спасибо.\n\n{attribution}\n\n> Проверьте настройки.\n"
    assert split_reply(text).visible == "Спасибо."


@pytest.mark.parametrize(
    "separator",
    ["-----Исходное сообщение-----", "-------- Пересылаемое сообщение --------"],
)
def test_russian_original_message_separator_folded(separator: str) -> None:
    text = (
        f"Пересылаю переписку.\n\n{separator}\n"
        "От: Иван <ivan@example.ru>\nДата: 3 марта 2025\nТема: Счёт\n\nОплатите счёт.\n"
    )
    parts = split_reply(text)
    assert parts.visible == "Пересылаю переписку."
    assert parts.quoted.startswith(separator)


# --- Outlook header blocks -----------------------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        "From: Support <support@example.com>\nSent: Monday, March 3, 2025 10:00 AM\n"
        "To: Ann <ann@example.com>\nSubject: RE: Login",
        "*From:* Support <support@example.com>\n*Sent:* Monday, March 3, 2025 10:00 AM\n"
        "*To:* ann@example.com\n*Subject:* RE: Login",
        "Von: Support <support@example.com>\nGesendet: Montag, 3. März 2025 10:00\n"
        "An: Ann <ann@example.com>\nBetreff: AW: Login",
        "De : Support <support@example.com>\nEnvoyé : lundi 3 mars 2025 10:00\n"
        "À : Ann <ann@example.com>\nObjet : RE: Login",
        "________________________________\nFrom: Support <support@example.com>\n"
        "Sent: Monday, March 3, 2025 10:00 AM\nTo: Ann\nSubject: RE: Login",
        "-----Original Message-----\nFrom: Support [mailto:support@example.com]\n"
        "Sent: Monday, March 3, 2025 10:00 AM\nTo: Ann\nSubject: RE: Login",
        "From: Support Team With A Long Name\n<support@example.com>\n"
        "Sent: Monday, March 3, 2025 10:00 AM\nTo: Ann\nSubject: RE: Login",
    ],
)
def test_outlook_header_block_folded(block: str) -> None:
    parts = split_reply(f"Still broken.\n\n{block}\n\nPlease log in again.\n")
    assert parts.visible == "Still broken."
    assert parts.quoted.startswith(block.split("\n")[0])


def test_single_from_line_in_text_kept() -> None:
    text = "From: the warehouse in Tver\nThe parcel left today.\n"
    assert split_reply(text).visible == text.rstrip()


# --- signatures --------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        "-- \nAnn Example\nACME Ltd.",
        "--\nAnn Example",
        "Sent from my iPhone",
        "Sent from my iPad",
        "Sent from my Android phone",
        "Отправлено с iPhone",
        "Отправлено из мобильной Почты Mail.ru",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
    ],
)
def test_signature_folded(signature: str) -> None:
    parts = split_reply(f"The invoice is attached.\n\n{signature}\n")
    assert parts.visible == "The invoice is attached."
    assert parts.quoted == signature


def test_sentence_about_sending_kept() -> None:
    text = "Here it is.\n\nSent from my desk, is much easier than from my mobile phone.\n"
    assert split_reply(text).visible == text.rstrip()


def test_signature_then_quote_folded() -> None:
    text = (
        "Works.\n\nSent from my iPhone\n\nOn Mon, 3 Mar 2025, Ann <ann@example.com> wrote:\n> Hi\n"
    )
    parts = split_reply(text)
    assert parts.visible == "Works."
    assert parts.quoted.startswith("Sent from my iPhone")


# --- things that look like delimiters --------------------------------------------


def test_dashes_inside_sentence_kept() -> None:
    text = "This is not a ---------- delimiter.\n\nNeither is this.\n"
    assert split_reply(text).visible == text.rstrip()


def test_code_block_rules_kept() -> None:
    text = "Config:\n\n```\n-- comment\n#####\n---\n```\n\nThat is all.\n"
    assert split_reply(text).visible == text.rstrip()


def test_heading_underline_kept() -> None:
    text = "Steps\n-----\nRestart the router.\n"
    assert split_reply(text).visible == text.rstrip()


def test_list_bullets_kept() -> None:
    text = "Two things:\n\n- the login\n- the invoice\n"
    assert split_reply(text).visible == text.rstrip()


# --- HTML -------------------------------------------------------------------------


def test_html_gmail_quote_cut() -> None:
    html = (
        '<div dir="ltr">Fixed.</div><br><div class="gmail_quote">'
        '<div class="gmail_attr">On Mon, Ann wrote:</div>'
        '<blockquote class="gmail_quote">Old</blockquote></div>'
    )
    assert cut_html_quote(html) == '<div dir="ltr">Fixed.</div><br>'


def test_html_outlook_rule_and_header_cut() -> None:
    html = (
        '<div>New text</div><hr style="display:inline-block">'
        '<div id="divRplyFwdMsg"><b>From:</b> Support</div><div>Old text</div>'
    )
    assert cut_html_quote(html) == "<div>New text</div>"


def test_html_outlook_border_top_block_cut() -> None:
    html = (
        "<div class=WordSection1><p>New text</p>"
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'>"
        "<p><b>From:</b> Support<br><b>Sent:</b> Monday</p></div><p>Old text</p></div>"
    )
    cut = cut_html_quote(html)
    assert cut is not None
    assert "Old text" not in cut
    assert "New text" in cut


def test_html_apple_cite_blockquote_cut() -> None:
    html = (
        '<div>Thanks!</div><div><br><blockquote type="cite">'
        "<div>On 7 Mar 2025, at 18:01, Ann wrote:</div><div>Old</div></blockquote></div>"
    )
    assert cut_html_quote(html) == "<div>Thanks!</div><div><br>"


def test_html_thunderbird_cite_prefix_cut() -> None:
    html = (
        '<body><p>Thanks!</p><div class="moz-cite-prefix">03.03.2025 10:00, Иван пишет:</div>'
        '<blockquote type="cite">Old</blockquote></body>'
    )
    assert cut_html_quote(html) == "<body><p>Thanks!</p>"


def test_html_yahoo_quote_cut() -> None:
    html = '<div>Thanks!</div><div class="yahoo_quoted"><div>On Monday, Ann wrote:</div></div>'
    assert cut_html_quote(html) == "<div>Thanks!</div>"


def test_html_interleaved_blockquote_not_cut() -> None:
    html = (
        '<div>Answers below.</div><blockquote type="cite">Question one?</blockquote>'
        "<div>Answer one.</div>"
    )
    assert cut_html_quote(html) is None


def test_html_without_quote_returns_none() -> None:
    assert cut_html_quote("<p>Hello</p><hr><p>A rule in the text</p>") is None


def test_html_quote_only_returns_none() -> None:
    assert cut_html_quote('<blockquote type="cite">Old</blockquote>') is None


# --- hard case: Outlook reply with a header block and no ">" ----------------------


@pytest.fixture(scope="module")
def outlook_reply() -> EmailMessage:
    return _load_message(CASES_DIR / "014-outlook-quote-header" / "input.eml")


def test_outlook_case_visible_starts_with_reply(outlook_reply: EmailMessage) -> None:
    parts = split_reply(_body(outlook_reply, "plain"))
    assert parts.visible.startswith("The replacement unit still shows error E7 after a restart.")


@pytest.mark.parametrize(
    "hidden",
    [
        "please try the replacement unit we sent on Friday",
        "Sent: Monday, March 3, 2025",
        "divRplyFwdMsg",
        "From: Support Team",
    ],
)
def test_outlook_case_history_hidden(outlook_reply: EmailMessage, hidden: str) -> None:
    assert hidden not in split_reply(_body(outlook_reply, "plain")).visible


def test_outlook_case_history_kept_in_quoted(outlook_reply: EmailMessage) -> None:
    parts = split_reply(_body(outlook_reply, "plain"))
    assert parts.quoted.startswith("From: Support Team <support@helpdesk.example.com>")
    assert "please try the replacement unit we sent on Friday" in parts.quoted


def test_outlook_case_html_cut_before_header(outlook_reply: EmailMessage) -> None:
    cut = cut_html_quote(_body(outlook_reply, "html"))
    assert cut is not None
    assert "divRplyFwdMsg" not in cut
    assert "<hr" not in cut


@pytest.mark.parametrize(
    "hidden",
    ["please try the replacement unit we sent on Friday", "Sent: Monday, March 3, 2025"],
)
def test_outlook_case_html_text_hidden(outlook_reply: EmailMessage, hidden: str) -> None:
    cut = cut_html_quote(_body(outlook_reply, "html"))
    assert cut is not None
    assert hidden not in get_text(cut)


def test_outlook_case_html_text_starts_with_reply(outlook_reply: EmailMessage) -> None:
    cut = cut_html_quote(_body(outlook_reply, "html"))
    assert cut is not None
    assert (
        get_text(cut)
        .strip()
        .startswith("The replacement unit still shows error E7 after a restart.")
    )


# --- hard case: Gmail wraps its attribution, Apple Mail quotes its own --------------

GMAIL_AND_APPLE = [
    ("input.eml", "Yes, the order number is 5512."),
    ("input-2.eml", "Thanks, clearing the cache fixed it."),
]


def _case_016(name: str) -> EmailMessage:
    return _load_message(CASES_DIR / "016-gmail-wrapped-and-apple-quote-headers" / name)


@pytest.mark.parametrize(("name", "visible"), GMAIL_AND_APPLE)
def test_gmail_apple_case_visible(name: str, visible: str) -> None:
    assert split_reply(_body(_case_016(name), "plain")).visible == visible


@pytest.mark.parametrize("name", [name for name, _ in GMAIL_AND_APPLE])
@pytest.mark.parametrize(
    "hidden",
    [
        "wrote:",
        "support@helpdesk.example.com>",
        "Could you send us the order number",
        "Please clear the browser cache",
    ],
)
def test_gmail_apple_case_history_hidden(name: str, hidden: str) -> None:
    assert hidden not in split_reply(_body(_case_016(name), "plain")).visible


def test_apple_case_url_line_decoded_whole() -> None:
    quoted = split_reply(_body(_case_016("input-2.eml"), "plain")).quoted
    url_lines = [line for line in quoted.split("\n") if "help.example.com" in line]
    assert url_lines == [
        "> See https://help.example.com/articles/"
        "cache-clearing-for-all-supported-browsers-and-devices"
    ]


# --- nothing is lost ----------------------------------------------------------------

_LINE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "> quoted",
            ">> nested",
            "-- ",
            "--",
            "________",
            "-----Original Message-----",
            "From: Ann <ann@example.com>",
            "Sent: Monday, March 3, 2025",
            "To: Bob",
            "Subject: Hi",
            "On Mon, 3 Mar 2025 at 10:00, Ann <ann@example.com> wrote:",
            "On Mon, 3 Mar 2025 at 10:00, Ann <",
            "ann@example.com> wrote:",
            "пн, 3 мар. 2025 г. в 10:00, Иван <ivan@example.ru>:",
            "Sent from my iPhone",
            "```",
            "-Ann",
            ">:",
        ]
    ),
)


@given(st.lists(_LINE, max_size=25), st.sampled_from(["\n", "\r\n", "\r"]))
def test_split_reply_loses_no_line(lines: list[str], newline: str) -> None:
    text = newline.join(lines)
    parts = split_reply(text)
    kept = set(parts.visible.split("\n")) | set(parts.quoted.split("\n"))
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    for line in _non_blank_lines(normalized):
        assert line.rstrip() in {k.rstrip() for k in kept}, line


@given(st.lists(_LINE, max_size=25))
def test_split_reply_never_empty(lines: list[str]) -> None:
    text = "\n".join(lines)
    if text.strip():
        assert split_reply(text).visible.strip()
