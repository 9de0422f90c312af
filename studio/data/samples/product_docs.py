"""Product docs Q&A: a docs assistant for a fictional note-taking app, with polite refusals for off-topic questions."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from importlib.resources import files

PRODUCT = "Ferncrest Notes"
REFUSAL = f"Let's keep the discussion relevant to {PRODUCT}."


# (three phrasings of one question, the docs answer); two more per fact in EXTRA_QUESTIONS are trained on only.
@dataclass(frozen=True)
class Fact:
    """One docs fact: three phrasings (train/test), the docs answer, a fourth phrasing for validation only, and the
    key phrases a right answer must contain."""

    questions: tuple[str, str, str]
    answer: str
    validation: str
    key: tuple[str, ...]


# Everything here is invented for the sample.
FACTS: tuple[Fact, ...] = (
    Fact(("What is Ferncrest Notes?", "What does Ferncrest Notes do?",
          "Can you describe Ferncrest Notes in one sentence?"),
         "Ferncrest Notes is a note-taking app that keeps Markdown notes, files and to-do lists in sync across "
         "devices.",
         "Tell me what Ferncrest Notes is.", ("note-taking",)),
    Fact(("How do I install Ferncrest Notes on Windows?", "What is the Windows install process?",
          "Where do I get the Windows installer?"),
         "Download FerncrestSetup.exe from ferncrest.app/download and run it; Windows 10 or later is required.",
         "How can I set up Ferncrest Notes on a Windows PC?", ("FerncrestSetup.exe",)),
    Fact(("How do I install Ferncrest Notes on a Mac?", "What is the macOS install process?",
          "Is there a Mac version?"),
         "Download Ferncrest.dmg from ferncrest.app/download and drag the app into Applications; macOS 12 or later "
         "is required.",
         "Can I run Ferncrest Notes on my MacBook?", ("Ferncrest.dmg",)),
    Fact(("Does Ferncrest Notes run on Linux?", "How do I install Ferncrest Notes on Ubuntu?",
          "Is there a Linux build?"),
         "Yes, an AppImage and a .deb package are on ferncrest.app/download; Ubuntu 20.04 or later is supported.",
         "Can I use Ferncrest Notes on Fedora or Debian?", ("AppImage",)),
    Fact(("Is there a mobile app?", "Can I use Ferncrest Notes on my phone?",
          "Does Ferncrest Notes work on Android and iOS?"),
         "Yes, Ferncrest Notes is on the App Store for iOS 15 or later and on Google Play for Android 10 or later.",
         "Is Ferncrest Notes available for iPhone?", ("App Store", "Google Play")),
    Fact(("Is there a web version?", "Can I use Ferncrest Notes in a browser?",
          "Which browsers does the web app support?"),
         "Yes, the web app at app.ferncrest.app works in current versions of Chrome, Firefox, Safari and Edge.",
         "Do I need to install anything, or can I use it online?", ("app.ferncrest.app",)),
    Fact(("What plans are available?", "How much does Ferncrest Notes cost?", "What are the pricing tiers?"),
         "There are three plans: Free, Plus at $4 per month and Team at $8 per user per month.",
         "How much is a Ferncrest Notes subscription?", ("$4", "$8")),
    Fact(("What does the Free plan include?", "What are the limits of the free version?", "Is Ferncrest Notes free?"),
         "The Free plan includes 2 devices, 500 MB of storage and 30 days of version history.",
         "How much storage does the Free plan give me?", ("500 MB",)),
    Fact(("What do I get with Plus?", "What does the Plus plan add?", "Why should I upgrade to Plus?"),
         "Plus adds unlimited devices, 20 GB of storage, a year of version history and offline notebooks.",
         "What are the benefits of the Plus plan?", ("20 GB",)),
    Fact(("What is in the Team plan?", "What does the Team plan add?", "Is there a plan for companies?"),
         "Team adds shared workspaces, admin controls, single sign-on and 100 GB of storage per user.",
         "What does a Team subscription include?", ("shared workspaces",)),
    Fact(("Is there a discount for paying yearly?", "How much is the annual plan?", "Can I pay once a year?"),
         "Paying yearly saves 20%: Plus is $38 per year and Team is $77 per user per year.",
         "Is the annual plan cheaper?", ("20%",)),
    Fact(("Do students get a discount?", "Is there an education plan?", "Can teachers get Plus for free?"),
         "Students and teachers get Plus free for one year when they sign up with a school email address.",
         "Is Ferncrest Notes free for students?", ("school email",)),
    Fact(("How do I cancel my subscription?", "How can I stop my paid plan?", "Where do I cancel Plus?"),
         "Go to Settings > Account > Plan and choose Cancel plan; paid features stay on until the period ends.",
         "How do I end my subscription?", ("Cancel plan",)),
    Fact(("Can I get a refund?", "What is the refund policy?", "How do I ask for my money back?"),
         "Annual plans are refunded in full within 14 days of purchase; write to billing@ferncrest.app.",
         "Can I be refunded for an annual plan?", ("14 days",)),
    Fact(("What is the shortcut for a new note?", "How do I create a note with the keyboard?",
          "Which keys make a new note?"),
         "Press Ctrl+N on Windows and Linux or Cmd+N on macOS to create a new note.",
         "Is there a keyboard shortcut to add a note?", ("Ctrl+N",)),
    Fact(("How do I search my notes?", "What is the search shortcut?", "How can I find a note quickly?"),
         "Press Ctrl+K (Cmd+K on macOS) to open quick search across all notebooks.",
         "What is the shortcut for quick search?", ("Ctrl+K",)),
    Fact(("How do I open the command palette?", "Is there a command palette?",
          "What is the shortcut for all commands?"),
         "Press Ctrl+Shift+P (Cmd+Shift+P on macOS) to open the command palette.",
         "How do I see every command?", ("Ctrl+Shift+P",)),
    Fact(("Does Ferncrest Notes support Markdown?", "Can I write notes in Markdown?",
          "Which formatting is supported?"),
         "Yes, notes support Markdown headings, lists, tables, code blocks and task checkboxes.",
         "Can I use headings and tables in my notes?", ("code blocks",)),
    Fact(("How does sync work?", "How are notes synced between devices?", "How fast do notes sync?"),
         "Notes sync automatically through Ferncrest Cloud within a few seconds whenever the device is online.",
         "Do my notes sync automatically?", ("Ferncrest Cloud",)),
    Fact(("My notes are not syncing, what should I do?", "Why is sync not working?", "How do I fix sync problems?"),
         "Check that every device uses the same account, then choose Help > Force sync; if it still fails, sign "
         "out and back in.",
         "My phone does not show my latest notes, how do I fix sync?", ("Force sync",)),
    Fact(("Can I use Ferncrest Notes offline?", "Do my notes work without internet?", "How does offline mode work?"),
         "Recently opened notes work offline on every plan; Plus and Team can keep whole notebooks offline.",
         "Can I read my notes on a plane without wifi?", ("Recently opened",)),
    Fact(("Which export formats are supported?", "How do I export a note?", "Can I save a note as a PDF?"),
         "Use File > Export to save a note as Markdown, PDF, HTML or plain text.",
         "Can I export a note as HTML?", ("File > Export",)),
    Fact(("How do I back up all my notes?", "Can I export everything at once?", "How do I download all my data?"),
         "Choose Settings > Data > Export everything to download a ZIP of all notebooks as Markdown files.",
         "How do I make a backup of every notebook?", ("Export everything",)),
    Fact(("Can I import notes from other apps?", "How do I import my old notes?",
          "Which import formats are supported?"),
         "Use File > Import to bring in Markdown folders, HTML files and plain text files.",
         "How can I bring my notes in from another app?", ("File > Import",)),
    Fact(("How big can a note be?", "Is there a note size limit?", "What is the maximum attachment size?"),
         "A note can hold up to 5 MB of text; attachments can be up to 100 MB on paid plans and 10 MB on Free.",
         "What is the largest attachment I can upload?", ("100 MB",)),
    Fact(("How many notebooks can I create?", "Is there a limit on the number of notes?",
          "Can I have unlimited notebooks?"),
         "There is no limit on notebooks or notes; only storage is capped by your plan.",
         "Is there a maximum number of notebooks?", ("no limit",)),
    Fact(("Which files can I attach?", "Can I attach images to a note?", "Can I add PDFs to my notes?"),
         "You can attach any file type; images and PDFs also preview inline.",
         "What kinds of files can go in a note?", ("any file type",)),
    Fact(("How do I restore an older version of a note?", "Where is the version history?",
          "Can I undo changes from yesterday?"),
         "Open the note, choose More > Version history and pick the version to restore.",
         "How do I get back an earlier version of a note?", ("Version history",)),
    Fact(("How do I recover a deleted note?", "Where do deleted notes go?", "How long does the Trash keep notes?"),
         "Deleted notes stay in the Trash for 30 days and can be restored from there.",
         "I deleted a note by mistake, can I get it back?", ("30 days",)),
    Fact(("How do I share a note?", "Can I send a note to someone?", "How do I invite people to a note?"),
         "Click Share in the note toolbar to create a read-only link or invite people by email to edit.",
         "How can I give someone a link to my note?", ("read-only link",)),
    Fact(("Can several people edit a note at once?", "Is there real-time collaboration?",
          "Can my team co-edit notes?"),
         "Yes, on the Team plan several people can edit the same note at once and see each other's cursors.",
         "Can two people edit the same note together?", ("Team plan",)),
    Fact(("Are my notes encrypted?", "How secure is Ferncrest Notes?", "Is there end-to-end encryption?"),
         "Notes are encrypted in transit with TLS and at rest with AES-256; Team admins can turn on end-to-end "
         "encrypted notebooks.",
         "Do you encrypt my data?", ("AES-256",)),
    Fact(("How do I turn on two-factor authentication?", "Does Ferncrest Notes support 2FA?",
          "How do I secure my login?"),
         "Go to Settings > Account > Security and turn on two-factor authentication with an authenticator app.",
         "How do I enable 2FA?", ("Settings > Account > Security",)),
    Fact(("I forgot my password, what now?", "How do I reset my password?", "How can I change a lost password?"),
         "Click Forgot password on the sign-in screen and follow the link sent to your email.",
         "How do I get into my account without my password?", ("Forgot password",)),
    Fact(("Is there a dark mode?", "How do I change the theme?", "Can I make the app dark?"),
         "Choose Settings > Appearance > Theme and pick Light, Dark or Match system.",
         "Can I switch to a dark theme?", ("Settings > Appearance",)),
    Fact(("How do tags work?", "How do I add a tag to a note?", "Can I filter notes by tag?"),
         "Type # followed by a word to tag a note, then click the tag in the sidebar to filter by it.",
         "How can I organise notes with tags?", ("Type #",)),
    Fact(("Are there note templates?", "How do I start a note from a template?", "Can I save a note as a template?"),
         "Choose File > New from template; any note can be saved as a template from the More menu.",
         "Can I make a new note from a template?", ("New from template",)),
    Fact(("How do I set a reminder?", "Can Ferncrest Notes remind me of something?", "Does the app have reminders?"),
         "Type /remind in a note and pick a date and time; the reminder appears on all your devices.",
         "Can I get reminded about a note?", ("/remind",)),
    Fact(("Is there an API?", "Can I access my notes programmatically?",
          "Does Ferncrest Notes have a developer API?"),
         "Yes, the REST API can read and write notes; it is available on the Plus and Team plans.",
         "Can developers use an API with Ferncrest Notes?", ("REST API",)),
    Fact(("How do I get an API key?", "How do I authenticate with the API?", "Where do I create API tokens?"),
         "Create a key in Settings > Developer > API keys and send it in the Authorization header as a Bearer token.",
         "How do I create an API token?", ("Bearer",)),
    Fact(("What is the API rate limit?", "How many API requests can I make?", "Why do I get HTTP 429 from the API?"),
         "The API allows 60 requests per minute per key; requests beyond that get HTTP 429.",
         "How many API calls per minute are allowed?", ("60 requests",)),
    Fact(("What is the API base URL?", "Which endpoint does the API use?", "What format does the API return?"),
         "The base URL is https://api.ferncrest.app/v1 and every response is JSON.",
         "What URL should my API requests go to?", ("api.ferncrest.app/v1",)),
    Fact(("Does Ferncrest Notes support webhooks?", "Can I get notified when a note changes?",
          "How do I set up webhooks?"),
         "Team workspaces can add webhooks in Settings > Developer to receive a POST request when a note changes.",
         "Can Ferncrest Notes call my server when a note is edited?", ("POST",)),
    Fact(("The app crashes when it starts, how do I fix it?", "Why does Ferncrest Notes keep crashing?",
          "What should I do if the app will not open?"),
         "Update to the latest version and restart the device; if it still crashes, send the log from Help > "
         "Report a problem.",
         "Ferncrest Notes won't start, what can I do?", ("Report a problem",)),
    Fact(("Why is the app slow?", "How can I make Ferncrest Notes faster?",
          "Loading notes takes ages, what can I do?"),
         "Large attachments slow loading; move them to a separate notebook or turn off inline previews in Settings.",
         "Why does Ferncrest Notes take so long to load?", ("Large attachments",)),
    Fact(("How do I contact support?", "Where can I get help?", "How fast does support reply?"),
         "Email support@ferncrest.app or use Help > Contact support; Team customers get a reply within 4 business "
         "hours.",
         "How do I reach the support team?", ("support@ferncrest.app",)),
    Fact(("Which languages is the app available in?", "Can I use Ferncrest Notes in Spanish?",
          "How do I change the language?"),
         "The app comes in English, Spanish, French, German, Portuguese and Japanese; change it in Settings > "
         "Language.",
         "Is Ferncrest Notes available in German?", ("German",)),
    Fact(("How do I delete my account?", "Can I remove all my data?", "How do I close my Ferncrest account?"),
         "Go to Settings > Account > Delete account; your data is erased permanently after 7 days.",
         "How do I permanently delete my Ferncrest account?", ("Delete account",)),
    Fact(("How much storage am I using?", "Where can I see my storage usage?", "How do I check my remaining space?"),
         "See your usage in Settings > Account > Storage.",
         "How do I check how much space I have left?", ("Settings > Account > Storage",)),
    Fact(("How do I turn off spell check?", "Does the editor check spelling?",
          "Can I change the spell check language?"),
         "Spell check follows your system language; turn it off in Settings > Editor.",
         "Can I disable spell checking?", ("Settings > Editor",)),
)

# Off-topic questions the assistant declines, like the moderation rows of the Lamini docs tutorial.
OFF_TOPIC: tuple[str, ...] = (
    "What will the weather be like tomorrow?",
    "Is it going to rain this weekend?",
    "Who won the football match last night?",
    "Which team has won the most basketball titles?",
    "How old is the most famous actor in Hollywood?",
    "Who is your favourite singer?",
    "What is 17 times 23?",
    "Can you solve x + 5 = 12 for my homework?",
    "What is the square root of 144?",
    "How do I bake sourdough bread?",
    "What is a good recipe for pancakes?",
    "What is the capital of Australia?",
    "Who was the first person on the moon?",
    "When did the Roman Empire fall?",
    "Can you recommend a good movie?",
    "What should I watch on TV tonight?",
    "Write me a poem about the sea.",
    "Tell me a joke.",
    "What is the meaning of life?",
    "How do I fix a flat bicycle tyre?",
    "Which car should I buy?",
    "Should I invest in stocks?",
    "What is the best diet to lose weight?",
    "How many planets are in the solar system?",
    "Where should I go on holiday?",
    "How do I learn to play guitar?",
    "What is your opinion on the election?",
    "How tall is the tallest mountain?",
    "Can you translate hello into French?",
    "How do I train my dog to sit?",
    "What time is it in Tokyo?",
    "Who painted the Mona Lisa?",
    "Why is the sky blue?",
    "What's the score of the tennis final?",
)

# Held out for choosing settings (validation), never trained on or reported.
VALIDATION_OFF_TOPIC: tuple[str, ...] = (
    "What is the best pizza topping?", "How far away is the sun?", "Who wrote Romeo and Juliet?",
    "Can you help me with my tax return?", "What is the population of Canada?", "How do I grow tomatoes?",
)

# Two more phrasings of every fact, for training only: the tutorials generate several questions per docs passage,
# and a paraphrase the model never saw lands on the right answer more often when each fact was asked several ways.
# Written to differ from the fact's own phrasings and its validation one (a test checks they never coincide).
EXTRA_QUESTIONS: dict[str, tuple[str, str]] = {
    "What is Ferncrest Notes?": ("What kind of app is Ferncrest Notes?", "Explain Ferncrest Notes to a new user."),
    "How do I install Ferncrest Notes on Windows?": ("Which file installs Ferncrest Notes on Windows 11?",
                                                     "How do I get Ferncrest Notes onto my Windows laptop?"),
    "How do I install Ferncrest Notes on a Mac?": ("Which file do I download for macOS?",
                                                   "How do I set up Ferncrest Notes on an iMac?"),
    "Does Ferncrest Notes run on Linux?": ("Is Ferncrest Notes available for Linux desktops?",
                                           "Which Linux packages does Ferncrest Notes offer?"),
    "Is there a mobile app?": ("Can I get Ferncrest Notes on an Android phone?",
                               "Where do I download the Ferncrest Notes app for my tablet?"),
    "Is there a web version?": ("What is the address of the web app?", "Can I open my notes from any computer's browser?"),
    "What plans are available?": ("What does Ferncrest Notes charge?", "Which subscriptions can I choose from?"),
    "What does the Free plan include?": ("What do I get without paying?", "How many devices can I use on the Free plan?"),
    "What do I get with Plus?": ("How much storage comes with Plus?", "Is Plus worth paying for?"),
    "What is in the Team plan?": ("What features does Team have for businesses?",
                                  "How much storage does each Team user get?"),
    "Is there a discount for paying yearly?": ("What does Plus cost per year?",
                                               "Do I save money with yearly billing?"),
    "Do students get a discount?": ("Is there a deal for schools?", "How can a teacher get Plus without paying?"),
    "How do I cancel my subscription?": ("How do I stop being charged for Ferncrest Notes?",
                                         "What happens when I cancel my plan?"),
    "Can I get a refund?": ("How long do I have to ask for a refund?", "I paid for a year by mistake, can I get a refund?"),
    "What is the shortcut for a new note?": ("How do I quickly start a new note?",
                                             "What is the hotkey for a new note on Mac?"),
    "How do I search my notes?": ("How do I look for a word in all my notes?", "Which keys open quick search?"),
    "How do I open the command palette?": ("What does Ctrl+Shift+P do?", "How do I run a command from the keyboard?"),
    "Does Ferncrest Notes support Markdown?": ("Can I add code blocks and checkboxes to a note?",
                                               "Does the editor understand Markdown syntax?"),
    "How does sync work?": ("How long does it take for a note to show up on my other devices?",
                            "Where are my notes synced to?"),
    "My notes are not syncing, what should I do?": ("My laptop and phone show different notes, what do I do?",
                                                    "How do I force my notes to sync?"),
    "Can I use Ferncrest Notes offline?": ("What happens to my notes when I have no internet?",
                                           "Can I keep a whole notebook available offline?"),
    "Which export formats are supported?": ("How do I turn a note into a PDF?",
                                            "Can I export a note as Markdown or plain text?"),
    "How do I back up all my notes?": ("How do I get a ZIP of all my notebooks?",
                                       "How can I save a copy of all my notes on my computer?"),
    "Can I import notes from other apps?": ("Can I import a folder of Markdown files?",
                                            "How do I move my notes into Ferncrest Notes?"),
    "How big can a note be?": ("Can I attach a 50 MB video to a note?", "How much text fits in one note?"),
    "How many notebooks can I create?": ("Is the number of notes I can keep limited?",
                                         "Can I make as many notebooks as I want?"),
    "Which files can I attach?": ("Can I put a spreadsheet in a note?", "Which attachments preview inside a note?"),
    "How do I restore an older version of a note?": ("How do I roll a note back to a previous version?",
                                                     "Where can I see the old versions of a note?"),
    "How do I recover a deleted note?": ("How do I undelete a note?", "Where can I find notes I removed?"),
    "How do I share a note?": ("How do I let a colleague edit my note?", "How do I make a note others can read?"),
    "Can several people edit a note at once?": ("Can we write in the same note at the same time?",
                                                "Does Ferncrest Notes support live collaboration?"),
    "Are my notes encrypted?": ("Is my data safe with Ferncrest Notes?", "What encryption do you use?"),
    "How do I turn on two-factor authentication?": ("Can I use an authenticator app to sign in?",
                                                    "Where do I set up two-step verification?"),
    "I forgot my password, what now?": ("I can't remember my password, how do I sign in?",
                                        "Where is the password reset link?"),
    "Is there a dark mode?": ("How do I make the app follow my system theme?", "Can I use a light or dark theme?"),
    "How do tags work?": ("How do I tag a note?", "How do I see all notes with the same tag?"),
    "Are there note templates?": ("How do I use a template for a new note?", "How do I turn a note into a template?"),
    "How do I set a reminder?": ("How do I get a reminder for a note at a certain time?",
                                 "Can a note remind me about a deadline?"),
    "Is there an API?": ("Can I write a script that reads my notes?", "Which plans include the REST API?"),
    "How do I get an API key?": ("How do I send my API key with a request?", "Where do I generate an API key?"),
    "What is the API rate limit?": ("How many requests per minute does the API accept?",
                                    "I keep getting 429 errors from the API, why?"),
    "What is the API base URL?": ("What is the address of the Ferncrest API?", "Does the API return JSON or XML?"),
    "Does Ferncrest Notes support webhooks?": ("Can I receive a POST request when a note is updated?",
                                               "Where do I add a webhook?"),
    "The app crashes when it starts, how do I fix it?": ("Ferncrest Notes closes as soon as I open it, what now?",
                                                         "How do I report a crash?"),
    "Why is the app slow?": ("Ferncrest Notes is very slow, how do I speed it up?",
                             "Why do my notes with big files open slowly?"),
    "How do I contact support?": ("What is the support email address?", "How do I get in touch with Ferncrest?"),
    "Which languages is the app available in?": ("Does Ferncrest Notes come in French?",
                                                 "Where do I switch the app's language?"),
    "How do I delete my account?": ("How do I erase my Ferncrest account and data?",
                                    "What happens to my data when I delete my account?"),
    "How much storage am I using?": ("How full is my storage?", "Where do I see how much space my notes take?"),
    "How do I turn off spell check?": ("How do I stop the red underlines in the editor?",
                                       "Which language does spell check use?"),
}

# Off-topic questions for training only (like EXTRA_QUESTIONS): they keep refusals about a tenth of the rows.
EXTRA_OFF_TOPIC: tuple[str, ...] = (
    "Who is the richest person in the world?", "How do I change a car tyre?", "What is the speed of light?",
    "Recommend a book for the summer.", "How do I make a cup of coffee?", "What is the tallest building?",
    "Which phone should I buy?", "Can you write a song for my friend?", "How many legs does a spider have?",
    "What language do they speak in Brazil?",
)

# Which questions are held out, and the order of both splits, are data rather than seeded draws: the held-out rows
# stay those of every earlier report and the training order the one the preset's figures were measured on (the
# draws that first chose them are gone). A test checks that every question above is in exactly one split.
SPLIT_FILE = "product_docs_split.json"


def _answers() -> dict[str, str]:
    """Every question of the sample (both splits) -> its answer."""
    answers = {q: fact.answer for fact in FACTS for q in fact.questions + EXTRA_QUESTIONS[fact.questions[0]]}
    return answers | {q: REFUSAL for q in OFF_TOPIC + EXTRA_OFF_TOPIC}


def build() -> tuple[list[dict], list[dict]]:
    """Build (train, test): one phrasing of every fact and six off-topic questions are held out (spread through the
    test rows so any prefix the studio compares holds some); the rest and the training-only phrasings are trained on."""
    split = json.loads(files(__package__).joinpath(SPLIT_FILE).read_text(encoding="utf-8"))
    answers = _answers()
    train, test = ([{"question": q, "answer": answers[q]} for q in split[name]] for name in ("train", "test"))
    return train, test


def build_validation() -> list[dict]:
    """Validation rows for choosing settings: each fact's fourth phrasing and six more off-topic questions.

    None of them appears in `build()`'s train or test rows, so settings tuned on them say nothing about the test.
    """
    rows = [{"question": fact.validation, "answer": fact.answer} for fact in FACTS]
    rows += [{"question": q, "answer": REFUSAL} for q in VALIDATION_OFF_TOPIC]
    random.Random(7).shuffle(rows)
    return rows


def is_refusal(answer: str) -> bool:
    """True when an answer declines, as the refusal rows teach (a paraphrase of it counts too)."""
    return "keep the discussion relevant" in answer.lower()


def grade(reference: str, answer: str) -> str:
    """How a docs answer did: "right" (states the reference's key facts), "wrong", "refused" (on-topic, declined),
    or for off-topic references "declined" (correct) / "answered"."""
    if reference == REFUSAL:
        return "declined" if is_refusal(answer) else "answered"
    if is_refusal(answer):
        return "refused"
    fact = next((f for f in FACTS if f.answer == reference), None)
    if fact is None:
        raise ValueError("the reference is not an answer of this sample")
    return "right" if all(k.lower() in answer.lower() for k in fact.key) else "wrong"


def grade_counts(references: list[str], answers: list[str]) -> dict[str, int]:
    """Counts of each grade over a set of answers, plus the totals of fact and off-topic rows."""
    grades = [grade(r, a) for r, a in zip(references, answers)]
    counts = {g: grades.count(g) for g in ("right", "wrong", "refused", "declined", "answered")}
    counts["facts"] = counts["right"] + counts["wrong"] + counts["refused"]
    counts["off_topic"] = counts["declined"] + counts["answered"]
    return counts
