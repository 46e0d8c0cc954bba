"""What a blind vote, a judge verdict and a leaderboard look like to every front (REST, widgets, CLI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..inference.protocol import SamplingParams

#: the longest prompt (or answer sent with a vote) kept with a vote, in characters
MAX_VOTE_TEXT_CHARS = 32_768
#: bootstrap resamples a leaderboard may ask for (each costs a fit; 200 is what the intervals need)
MAX_RESAMPLES = 2_000

Verdict = Literal["a", "b", "tie", "both_bad"]
VoteSource = Literal["votes", "judge", "both"]


class BlindPairRequest(SamplingParams):
    """``POST deployments/{id}/blind-pairs``: one prompt to two of the deployment's models, names hidden."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_VOTE_TEXT_CHARS)
    models: list[str] | None = Field(
        default=None,
        min_length=2,
        description="served names to choose the pair from (default: every model of the deployment)",
    )
    order_seed: int | None = Field(
        default=None, ge=0, le=(1 << 32) - 1, description="seeds the pair and the order shown (default: random)"
    )


class BlindAnswer(BaseModel):
    label: Literal["A", "B"]
    text: str


class BlindPair(BaseModel):
    """Two answers labelled A and B; which model gave which is told only with the vote."""

    id: str = Field(description="what the vote names (pair_id)")
    deployment_id: str
    prompt: str
    answers: list[BlindAnswer]
    order_seed: int


class VoteRequest(BaseModel):
    """``POST deployments/{id}/votes``: the verdict on a blind pair (``pair_id``), or a judgement made
    elsewhere on two named models (``model_a``, ``model_b``)."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict = Field(description="a or b: that answer is better; tie; both_bad")
    pair_id: str | None = Field(default=None, description="the blind pair voted on")
    model_a: str | None = Field(default=None, description="without pair_id: the served name of answer A's model")
    model_b: str | None = Field(default=None, description="without pair_id: the served name of answer B's model")
    prompt: str | None = Field(default=None, max_length=MAX_VOTE_TEXT_CHARS)
    answer_a: str | None = Field(default=None, max_length=MAX_VOTE_TEXT_CHARS)
    answer_b: str | None = Field(default=None, max_length=MAX_VOTE_TEXT_CHARS)


class Vote(BaseModel):
    """One pairwise judgement: a person's blind vote or a judge model's verdict."""

    id: str
    deployment_id: str
    source: Literal["vote", "judge"]
    verdict: Verdict
    model_a: str = Field(description="the model whose answer was shown as A")
    model_b: str
    prompt: str | None = None
    answer_a: str | None = None
    answer_b: str | None = None
    order_seed: int | None = Field(default=None, description="the seed that chose the pair and the order shown")
    params: dict[str, Any] = Field(default_factory=dict, description="the sampling parameters the answers had")
    voter: str | None = Field(default=None, description="who voted (the Jupyter user; the OS user for the CLI)")
    judge: str | None = Field(default=None, description="the judge model, for a judge verdict")
    evaluation_id: str | None = None
    created_on: str
    voted_on: str | None = None


class Standing(BaseModel):
    model: str
    rank: int | None = Field(description="1 + the models whose interval lies wholly above; None: never compared")
    elo: float | None = Field(description="Bradley-Terry strength on the Elo scale (400/ln10·θ + 1000)")
    elo_low: float | None = Field(description="95 % bootstrap interval")
    elo_high: float | None
    theta: float | None = Field(description="Bradley-Terry log-strength, centred on the rated models")
    wins: float
    losses: float
    ties: float = Field(description="ties and both-bad verdicts (each counts as half a win for both)")
    comparisons: int
    unresolved: list[str] = Field(
        default_factory=list, description="models whose intervals overlap this one's (the notes say why)"
    )


class Leaderboard(BaseModel):
    deployment_id: str
    source: VoteSource
    models: list[str]
    standings: list[Standing] = Field(description="best first")
    win_rate: list[list[float | None]] = Field(description="[i][j]: share of i's comparisons with j that i won")
    comparisons: list[list[int]] = Field(description="[i][j]: how many times i and j were compared")
    votes: int
    resamples: int
    notes: list[str] = Field(default_factory=list)
