"""The speech benchmark's ground truth: sentences with the queries that should find them, and slide captions.

Each sentence comes with three queries whose right answer is that sentence's span: an exact phrase from it,
one rare word in it, and a paraphrase that says the same thing in other words (lexical search can only find
a paraphrase through the words it shares, which is what the benchmark measures). Captions are drawn at known
sizes, so OCR recall can be reported per text height. Written once, before any model ran on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Sentence:
    text: str
    phrase: str  # an exact phrase from the text
    rare: str  # one word that occurs in no other sentence
    paraphrase: str  # the same meaning in other words


SENTENCES: tuple[Sentence, ...] = (
    Sentence("My grandmother grew tomatoes in the garden every summer.", "grew tomatoes in the garden", "tomatoes",
             "granny planted vegetables each year"),
    Sentence("We watched the fireworks from the roof of the old library.", "fireworks from the roof", "fireworks",
             "seeing the rockets explode from up on the building"),
    Sentence("The train to the coast leaves from platform nine at noon.", "leaves from platform nine", "platform",
             "when does the railway service to the seaside depart"),
    Sentence("Please remember to water the plants on Tuesday morning.", "water the plants", "plants",
             "do not forget the flowers need watering"),
    Sentence("The wireless password is written on the kitchen door.", "written on the kitchen door", "password",
             "where can I find the network code"),
    Sentence("Our dog learned to open the fridge by himself.", "open the fridge", "fridge",
             "the puppy figured out how to get into the refrigerator"),
    Sentence("The museum closes early on public holidays.", "closes early on public holidays", "museum",
             "gallery opening hours on bank holidays"),
    Sentence("She painted the small boat a bright shade of yellow.", "painted the small boat", "boat",
             "the dinghy got a new coat of paint"),
    Sentence("Grandfather told us stories about the long winter of the war.", "stories about the long winter",
             "grandfather", "grandpa talking about wartime"),
    Sentence("The bakery on the corner sells fresh bread every morning.", "sells fresh bread", "bakery",
             "where to buy a loaf early in the day"),
    Sentence("We missed the last bus and walked home in the rain.", "walked home in the rain", "bus",
             "we had to go back on foot when it was pouring"),
    Sentence("The children built a castle out of sand and shells.", "built a castle out of sand", "castle",
             "kids playing on the beach"),
    Sentence("Turn left at the church and the hotel is straight ahead.", "turn left at the church", "church",
             "directions to where we are staying"),
    Sentence("The doctor said the results of the test were normal.", "results of the test were normal", "doctor",
             "the medical check came back fine"),
    Sentence("Uncle Peter plays the violin at every family wedding.", "plays the violin", "violin",
             "my relative performs music when someone gets married"),
    Sentence("The flight to the island was delayed by two hours.", "delayed by two hours", "flight",
             "the plane left late"),
    Sentence("Her birthday cake had seven candles and chocolate icing.", "seven candles and chocolate icing",
             "candles", "the party dessert"),
    Sentence("The river flooded the fields after three days of storms.", "flooded the fields", "river",
             "water covered the farmland after bad weather"),
)  # fmt: skip

# (text, capital-letter height in px at 640x360) for the slides; each video shows two of them
CAPTIONS: tuple[tuple[str, int], ...] = (
    ("Quarterly results 2024", 32), ("Revenue grew in Europe", 24), ("Meeting room four", 20),
    ("Exit to the garden", 16), ("Welcome to the lake house", 48), ("Ticket office closed", 28),
    ("Platform nine departures", 24), ("Happy birthday Anna", 40), ("Museum opening hours", 20),
    ("Fresh bread daily", 32), ("Kitchen rules", 24), ("Summer holiday 2023", 16),
)  # fmt: skip

VOICES: tuple[tuple[str, int, int], ...] = (("en-gb", 150, 4), ("en-gb-x-rp", 160, 3), ("en-us", 140, 4),
                                            ("en-us+m3", 165, 3))  # fmt: skip
_NUMBERS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
            "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12"}  # fmt: skip


def normalise(text: str) -> list[str]:
    """Words for scoring: lower case, no punctuation, small numbers as digits (Whisper writes "9" for "nine")."""
    words = re.findall(r"[^\W_]+", text.lower().replace("'", ""))
    return [_NUMBERS.get(w, w) for w in words]


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
        previous = current
    return previous[-1]
