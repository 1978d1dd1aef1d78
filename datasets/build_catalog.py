"""Builds catalog-demo.csv: self-written product blurbs in four languages plus public-domain book
openings, of varied length. Deterministic (seeded); re-run to regenerate the shipped file."""

from __future__ import annotations

import csv
import random
from pathlib import Path

PRODUCTS = {
    "en": (
        [
            "kettle",
            "desk lamp",
            "backpack",
            "coffee grinder",
            "rain jacket",
            "reading chair",
            "water bottle",
            "wool blanket",
            "bicycle light",
            "notebook",
            "chef's knife",
            "tea set",
        ],
        [
            "sturdy",
            "lightweight",
            "handmade",
            "compact",
            "quiet",
            "elegant",
            "weatherproof",
            "durable",
        ],
        [
            "It ships in recycled packaging.",
            "Every unit is tested before it leaves our workshop.",
            "The finish resists scratches and fingerprints.",
            "It comes with a two year warranty.",
            "Spare parts are available for ten years.",
            "It folds flat for storage.",
            "The battery lasts about forty hours on a single charge.",
            "Care is simple: wipe it with a damp cloth.",
        ],
        "This {adj} {item} is made for everyday use.",
    ),
    "de": (
        [
            "Wasserkocher",
            "Schreibtischlampe",
            "Rucksack",
            "Kaffeemühle",
            "Regenjacke",
            "Lesesessel",
            "Trinkflasche",
            "Wolldecke",
            "Fahrradlicht",
            "Notizbuch",
        ],
        ["robuste", "leichte", "handgemachte", "kompakte", "leise", "elegante", "wetterfeste"],
        [
            "Sie wird in recycelter Verpackung versendet.",
            "Jedes Stück wird vor dem Versand geprüft.",
            "Die Oberfläche ist kratzfest.",
            "Es gibt zwei Jahre Garantie.",
            "Ersatzteile sind zehn Jahre lang erhältlich.",
            "Die Pflege ist einfach.",
        ],
        "Diese {adj} Ausführung ({item}) ist für den Alltag gemacht.",
    ),
    "fr": (
        [
            "bouilloire",
            "lampe de bureau",
            "sac à dos",
            "moulin à café",
            "veste de pluie",
            "fauteuil de lecture",
            "gourde",
            "couverture en laine",
            "carnet",
        ],
        ["robuste", "léger", "fait main", "compact", "silencieux", "élégant"],
        [
            "Il est expédié dans un emballage recyclé.",
            "Chaque pièce est contrôlée avant l'envoi.",
            "La finition résiste aux rayures.",
            "Il est garanti deux ans.",
            "Les pièces de rechange sont disponibles pendant dix ans.",
            "L'entretien est simple.",
        ],
        "Ce modèle {adj} ({item}) est conçu pour un usage quotidien.",
    ),
    "es": (
        [
            "hervidor",
            "lámpara de escritorio",
            "mochila",
            "molinillo de café",
            "chaqueta impermeable",
            "sillón de lectura",
            "botella de agua",
            "manta de lana",
        ],
        ["resistente", "ligero", "hecho a mano", "compacto", "silencioso", "elegante"],
        [
            "Se envía en un embalaje reciclado.",
            "Cada unidad se prueba antes del envío.",
            "El acabado resiste los arañazos.",
            "Tiene dos años de garantía.",
            "Hay piezas de repuesto durante diez años.",
            "El cuidado es sencillo.",
        ],
        "Este modelo {adj} ({item}) está pensado para el uso diario.",
    ),
}

# Openings of public-domain books (authors died before 1930).
BOOKS = [
    (
        "book-pride",
        "en",
        "Jane Austen, Pride and Prejudice",
        "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be "
        "in want of a wife. However little known the feelings or views of such a man may be on his first "
        "entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, "
        "that he is considered the rightful property of some one or other of their daughters.",
    ),
    (
        "book-moby",
        "en",
        "Herman Melville, Moby-Dick",
        "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my "
        "purse, and nothing particular to interest me on shore, I thought I would sail about a little and "
        "see the watery part of the world. It is a way I have of driving off the spleen and regulating the "
        "circulation.",
    ),
    (
        "book-alice",
        "en",
        "Lewis Carroll, Alice's Adventures in Wonderland",
        "Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing "
        "to do: once or twice she had peeped into the book her sister was reading, but it had no pictures "
        "or conversations in it, and what is the use of a book, thought Alice, without pictures or "
        "conversations?",
    ),
    (
        "book-verwandlung",
        "de",
        "Franz Kafka, Die Verwandlung",
        "Als Gregor Samsa eines Morgens aus unruhigen Träumen erwachte, fand er sich in seinem Bett zu "
        "einem ungeheueren Ungeziefer verwandelt. Er lag auf seinem panzerartig harten Rücken und sah, "
        "wenn er den Kopf ein wenig hob, seinen gewölbten, braunen, von bogenförmigen Versteifungen "
        "geteilten Bauch.",
    ),
    (
        "book-miserables",
        "fr",
        "Victor Hugo, Les Misérables",
        "En 1815, M. Charles-François-Bienvenu Myriel était évêque de Digne. C'était un vieillard "
        "d'environ soixante-quinze ans; il occupait le siège de Digne depuis 1806.",
    ),
    (
        "book-quijote",
        "es",
        "Miguel de Cervantes, Don Quijote",
        "En un lugar de la Mancha, de cuyo nombre no quiero acordarme, no ha mucho tiempo que vivía un "
        "hidalgo de los de lanza en astillero, adarga antigua, rocín flaco y galgo corredor.",
    ),
]


def main(path: Path | None = None, n_products: int = 290) -> None:
    path = path or Path(__file__).with_name("catalog-demo.csv")
    rng = random.Random(7)
    rows = []
    languages = ["en"] * 5 + ["de"] * 2 + ["fr"] * 2 + ["es"]
    for i in range(n_products):
        lang = rng.choice(languages)
        items, adjectives, facts, opener = PRODUCTS[lang]
        item, adj = rng.choice(items), rng.choice(adjectives)
        extra = rng.sample(facts, k=rng.choice([0, 1, 2, 3, 4, len(facts)]))
        text = " ".join([opener.format(adj=adj, item=item), *extra])
        rows.append(
            {
                "id": f"sku-{i:04d}",
                "text": text,
                "language": lang,
                "category": "product",
                "source": "self-written",
            }
        )
    for book_id, lang, source, text in BOOKS:
        rows.append(
            {"id": book_id, "text": text, "language": lang, "category": "book", "source": source}
        )
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "text", "language", "category", "source"])
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
