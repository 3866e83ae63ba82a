from chat.prompt import SYSTEM_PROMPT, build, estimate_tokens

PASSAGE = {"entry_id": 1, "title": "Backups", "source": "wiki", "snippet": "s", "content": "restic " * 50}


def test_it_puts_system_history_and_question_in_order():
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    messages, citations = build(question="next?", history=history, passages=[], context_tokens=4096,
                                reply_tokens=512, knowledge_tokens=1000)
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert messages[1:] == [*history, {"role": "user", "content": "next?"}]
    assert citations == []


def test_old_history_is_dropped_first_to_fit_the_context():
    history = [{"role": "user", "content": f"{n} " + "word " * 200} for n in range(20)]
    messages, _ = build(question="q", history=history, passages=[], context_tokens=2048, reply_tokens=512,
                        knowledge_tokens=0)
    kept = messages[1:-1]
    assert 0 < len(kept) < 20
    assert kept[-1] == history[-1] and kept[0] == history[20 - len(kept)]  # the newest, contiguous
    assert sum(estimate_tokens(m["content"]) for m in messages) <= 2048 - 512


def test_passages_go_into_the_system_prompt_numbered_with_citations():
    messages, citations = build(question="q", history=[], passages=[PASSAGE, {**PASSAGE, "entry_id": 2}],
                                context_tokens=8192, reply_tokens=512, knowledge_tokens=2000)
    system = messages[0]["content"]
    assert "[1] Backups (wiki)" in system and "[2] Backups (wiki)" in system
    assert [c["entry_id"] for c in citations] == [1, 2]
    assert set(citations[0]) == {"entry_id", "title", "source", "snippet"}


def test_knowledge_stays_within_its_own_budget():
    passages = [{**PASSAGE, "entry_id": n, "content": "x " * 2000} for n in range(10)]
    messages, citations = build(question="q", history=[], passages=passages, context_tokens=8192,
                                reply_tokens=512, knowledge_tokens=600)
    assert estimate_tokens(messages[0]["content"]) <= estimate_tokens(SYSTEM_PROMPT) + 600 + 10
    assert 1 <= len(citations) < 10


def test_the_question_always_goes_in_even_when_nothing_else_fits():
    messages, citations = build(question="q " * 5000, history=[{"role": "user", "content": "old"}],
                                passages=[PASSAGE], context_tokens=1024, reply_tokens=512, knowledge_tokens=500)
    assert messages[-1]["content"].startswith("q q") and len(messages) == 2 and citations == []
