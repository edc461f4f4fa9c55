"""The texts the serving benchmarks send: eight short sentences and eight full-length movie reviews.

Kept apart from the benchmarks' code so every benchmark sends the same inputs (figures stay comparable).
"""

from __future__ import annotations

SENTENCES = [
    "A wonderful film with a great cast.",
    "The plot was boring and the acting was awful.",
    "I loved every minute of it.",
    "Not the worst movie I have seen, but close.",
    "An excellent, moving story that stays with you.",
    "Dull, predictable and far too long.",
    "The soundtrack is brilliant and the photography superb.",
    "I wanted to like it, but it was a waste of time.",
]

# Eight full-length reviews (about 300 words, 340-370 word pieces each), alternately positive and negative.
REVIEWS = [
    # 1 positive
    "I went into The Lighthouse Keeper's Daughter expecting a slow, handsome period piece and came out having seen "
    "one of the most quietly devastating films of the year. The story is simple enough: a widowed keeper on a rocky "
    "island off the Scottish coast raises his teenage daughter alone, and when a shipwrecked sailor washes up on "
    "their shore the fragile balance of their small world begins to shift. What makes it remarkable is the "
    "patience of the direction. Scenes are allowed to breathe, and the camera lingers on faces long enough that "
    "you start to read every flicker of doubt and tenderness in them. The lead actress, who I had never seen "
    "before, gives a performance of astonishing control; she says very little, but you always know exactly what "
    "she is thinking, and the moment she finally raises her voice at her father is more shocking than any "
    "explosion in a summer blockbuster. The father is played with gruff warmth and a buried sadness that slowly "
    "rises to the surface, and the sailor is charming without ever becoming a cliche. The cinematography is "
    "gorgeous: grey seas, wet stone, lamplight on weathered wood, and a storm sequence in the second act that is "
    "genuinely frightening. The score is sparse, mostly a lone cello, and it never tells you how to feel. If I "
    "have a complaint it is that the final ten minutes tie things up a little too neatly, and one subplot about a "
    "letter from the mainland goes nowhere. But these are small flaws in a film that trusts its audience, respects "
    "its characters and earns every one of its tears. I saw it with a friend who usually hates anything without "
    "car chases, and she was crying by the end. Highly recommended, ideally on the biggest screen you can find, "
    "with the phone switched off and nothing else planned for the evening.",
    # 2 negative
    "There is a decent thirty minute film buried somewhere inside Quantum Vendetta, but you have to sit through "
    "two and a half hours of noise, shaky camera work and recycled dialogue to find it. The premise sounds fun on "
    "paper: a disgraced physicist discovers that her former employer is using a prototype time machine to rig "
    "stock markets, and she teams up with a cynical bounty hunter to stop them. Unfortunately the script has no "
    "idea what to do with its own ideas. The rules of time travel change from scene to scene whenever the plot "
    "needs a way out of a corner, characters die and come back without any emotional weight, and the villain's "
    "plan makes less sense the more he explains it, which he does at great length, twice. The action scenes are "
    "edited so frantically that I could not tell who was hitting whom, and the special effects look unfinished, "
    "with green screen edges visible around the actors in the big rooftop finale. The lead is a talented actress "
    "who has been excellent elsewhere, but here she is stuck delivering lines like 'time is the one thing we "
    "cannot afford to waste' with a straight face, and you can almost see her wondering how she ended up here. "
    "Her co-star mumbles through every scene as if he is reading the script for the first time. There is no "
    "chemistry between them, yet the film insists on a romance that arrives out of nowhere in the third act. The "
    "soundtrack is a wall of pounding drums that never lets up, so even the quiet scenes feel exhausting. I kept "
    "checking my watch, and when the post credits scene promised a sequel, several people in my screening "
    "actually groaned out loud. Save your money and your evening; rewatch a classic time travel film instead.",
    # 3 positive
    "Comedies this sharp are rare, and Bread and Circuses is the funniest film I have seen in years. It follows a "
    "struggling family bakery in a small Italian town that accidentally becomes famous after a food critic mistakes "
    "a burnt loaf for an avant-garde masterpiece. What follows is a wonderfully escalating farce as the family "
    "tries to reproduce a mistake they do not understand, while tourists, investors and a suspicious health "
    "inspector descend on their tiny shop. The writing is smart and generous. Every character, even the ones who "
    "appear for a single scene, gets at least one great line, and the jokes land because they come out of who "
    "these people are rather than from pop culture references that will date in a year. The grandmother, played "
    "by a veteran stage actress, steals every scene she is in with a deadpan delivery that had my whole row "
    "laughing so hard we missed the next joke. The younger brother's doomed attempts to run the bakery's social "
    "media account are a running gag that pays off beautifully in the final act. Beneath the laughs there is a "
    "real warmth about family, pride and the fear of being found out as a fraud, and the film handles its "
    "sentimental moments with a light touch so they never become syrupy. The direction is brisk, the town looks "
    "sun-drenched and inviting, and the music, a mix of old Italian pop songs and a playful original score, keeps "
    "the energy high. It is not perfect; a subplot about a rival bakery feels a little underdeveloped, and one "
    "slapstick sequence in a flour warehouse goes on slightly too long. But I left the cinema grinning, hungry and "
    "already planning to see it again with my parents. A delightful, big-hearted comedy that deserves a large "
    "audience and will probably become a favourite to rewatch over the holidays.",
    # 4 negative
    "I am a big fan of the original novel, so I was excited when I heard that The Winter Orchard was finally being "
    "adapted. What a disappointment. The filmmakers have taken a rich, layered story about three generations of "
    "women running a failing apple farm and turned it into a dull, shapeless melodrama that somehow manages to be "
    "both rushed and boring. Entire characters from the book are missing, and the ones who remain have been "
    "flattened into types: the stern mother, the rebellious daughter, the wise grandmother who speaks only in "
    "proverbs. The screenplay skips the slow build of resentment that made the novel so powerful, so when the big "
    "confrontations happen they feel unearned and shrill. Worse, the film invents a ridiculous new subplot about a "
    "developer who wants to buy the land, complete with a villainous businessman who might as well twirl his "
    "moustache. The performances are uneven. The grandmother is played with real dignity, and she is the only "
    "reason I did not walk out, but the daughter's performance is all sulking and shouting, and the mother seems "
    "to be acting in a different, much gloomier film. The pacing is a mess: the first hour drifts along with "
    "endless shots of frosty branches and people staring out of windows, then the last twenty minutes cram in a "
    "fire, a funeral, a wedding and a reconciliation as if the editors had suddenly noticed the running time. The "
    "dialogue is painfully on the nose, with characters explaining their feelings to each other in complete "
    "paragraphs. Even the photography, which should have been the easy part given the setting, is murky and flat. "
    "Fans of the book will be frustrated, and newcomers will wonder why anyone loved this story in the first "
    "place. Read the novel instead; it is a far better use of two hours.",
    # 5 positive
    "Documentaries about climbing usually rely on spectacular footage to carry them, and Thin Air certainly has "
    "that, but what makes it extraordinary is how honest it is about the people behind the ropes. The film follows "
    "a small team attempting a new route on a remote Himalayan peak, and the director, who climbed with them, "
    "captures not only the beauty and terror of the mountain but the arguments, the exhaustion and the quiet "
    "moments of doubt in the tent at night. The climbers are articulate and funny, and the film lets them be "
    "contradictory: brave and selfish, reckless and careful, devoted to each other and secretly competitive. One "
    "of the most moving sequences has nothing to do with climbing at all; it is a phone call home from base camp "
    "in which the youngest member of the team tries to explain to his mother why he keeps going back. The "
    "mountain footage is breathtaking, shot with small cameras strapped to helmets and packs, and the sound design "
    "puts you right on the ice, every crunch of crampons and howl of wind. The editing is superb, building tension "
    "through the summit push so effectively that I was gripping my armrest even though I knew how the story "
    "ended. The film also takes time to acknowledge the local porters and guides whose work makes such expeditions "
    "possible, which too many climbing films ignore. A few interview segments in the middle slow the momentum, and "
    "I would have liked to hear more from the one woman on the team, who is clearly the most experienced climber "
    "but gets less screen time than the men. Still, this is a gripping, thoughtful and beautifully made film that "
    "will stay with you long after the credits. Even if you have never worn a harness, you should see it.",
    # 6 negative
    "Midnight at the Grand Hotel wants to be a clever murder mystery in the tradition of the great country house "
    "whodunits, but it is a tedious, self-satisfied mess that mistakes a large cast for a good story. A famous "
    "novelist is found dead in a snowbound luxury hotel, and a retired detective staying there for his "
    "anniversary reluctantly takes the case. So far, so familiar, and there is nothing wrong with a familiar setup "
    "if the puzzle is good. This one is not. The clues are either painfully obvious or withheld from the audience "
    "entirely, so the final reveal, delivered in a twenty minute monologue in the ballroom, feels like a cheat "
    "rather than a satisfying click. The suspects are a parade of cliches, the jealous young wife, the bitter "
    "business partner, the mysterious foreign countess, and none of them is given enough time to become a real "
    "person. The film tries to make up for this with constant quirky touches, whimsical music, characters "
    "breaking the fourth wall, a running joke about the hotel's terrible soup, but the humour is forced and most "
    "of the jokes fall flat. The detective is played by an actor I usually enjoy, but here he is saddled with an "
    "absurd accent and a collection of tics that quickly become irritating. The production design is lavish, all "
    "velvet and chandeliers, and I will admit the hotel looks wonderful, but a beautiful set cannot disguise the "
    "fact that nothing interesting happens in it. At nearly two and a half hours the film is at least forty "
    "minutes too long, with a pointless flashback sequence in the middle that adds nothing except running time. "
    "By the end I did not care who the killer was; I just wanted to leave. A waste of a talented cast and a "
    "promising premise.",
    # 7 positive
    "Animated films aimed at children rarely make me cry, but Paper Lanterns had me reaching for tissues twice "
    "before the halfway point. It tells the story of a shy girl who moves with her father to a new city after her "
    "mother's death and discovers that the paper lanterns she folds at night come to life and carry her wishes "
    "across the rooftops. It sounds whimsical, and it is, but the film is also a remarkably honest portrait of "
    "grief and of a parent and child struggling to talk to each other. The animation is stunning, a mix of "
    "hand-drawn backgrounds and softly glowing computer animation that makes every night scene look like a "
    "painting come to life. The flight through the lantern festival in the middle of the film is one of the most "
    "beautiful sequences I have seen in any animated feature. The voice cast is excellent, especially the young "
    "actress playing the girl, who never sounds like a cute cartoon character but like a real, sometimes sullen, "
    "sometimes funny child. The father's quiet, tired voice performance is heartbreaking in its restraint. The "
    "screenplay is careful not to talk down to its audience; it trusts children to understand sadness and trusts "
    "adults to enjoy the humour, which includes a grumpy pigeon who gets all the best lines. The songs are "
    "lovely and, mercifully, there are only three of them. The pacing sags a little in the third act, when an "
    "unnecessary villain appears to give the story a conventional climax, and younger viewers may find a couple "
    "of scenes frightening. But overall this is a tender, gorgeous and wise film that the whole family can share. "
    "My eight year old asked to fold paper lanterns the moment we got home, and honestly, so did I.",
    # 8 negative
    "I really wanted to like Steel Horizon. The trailers promised a serious, grounded war drama about a tank crew "
    "in the final months of the war, and the cast is full of actors I admire. Instead, the film is a confused, "
    "overlong and oddly hollow experience that never decides what it wants to say. The opening battle is "
    "impressive, loud and chaotic and genuinely tense, and for about twenty minutes I thought we were in for "
    "something special. Then the story stalls. The crew drives from one village to another, meets a series of "
    "characters who deliver speeches about the meaning of war, and then drives on. None of these encounters "
    "builds on the last, so the film feels like a collection of deleted scenes rather than a story. The "
    "characters inside the tank are barely sketched: we learn that one has a girlfriend back home, one is "
    "religious, one is angry, and that is about all. When some of them die in the final battle, it is hard to "
    "feel much beyond a vague sense that we are supposed to be moved. The dialogue is stiff and full of "
    "anachronisms, and the director's habit of cutting to slow motion shots of ash falling whenever something "
    "important happens becomes unintentionally funny by the third time. Technically the film is competent, with "
    "solid sound design and convincing period detail, but the grey colour grading makes every scene look the same, "
    "and the night battles are so dark that I honestly could not see what was happening. The score swells "
    "constantly, trying to supply the emotion that the script fails to create. There are far better war films "
    "about the same period, several of them made decades ago on a fraction of this budget. This one is "
    "forgettable and, for long stretches, simply boring.",
]
