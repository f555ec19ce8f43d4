"""The review kinds kapi answers, from the catalogue: `kubectl auth whoami` (SelfSubjectReview),
TokenReview, `kubectl auth can-i` (SelfSubjectAccessReview), `kubectl auth can-i --list`
(SelfSubjectRulesReview), SubjectAccessReview and the namespaced LocalSubjectAccessReview.

They are virtual: `kapi.endpoints.reviews` answers a create at once and nothing is stored.
"""
from __future__ import annotations

from kapi.scheme.catalogue import builtin
from kapi.scheme.definitions import ResourceDef

AUTHENTICATION_GROUP = "authentication.k8s.io"
AUTHORIZATION_GROUP = "authorization.k8s.io"

SELF_SUBJECT_REVIEWS = builtin(AUTHENTICATION_GROUP, "selfsubjectreviews")
TOKEN_REVIEWS = builtin(AUTHENTICATION_GROUP, "tokenreviews")
SELF_SUBJECT_ACCESS_REVIEWS = builtin(AUTHORIZATION_GROUP, "selfsubjectaccessreviews")
SELF_SUBJECT_RULES_REVIEWS = builtin(AUTHORIZATION_GROUP, "selfsubjectrulesreviews")
SUBJECT_ACCESS_REVIEWS = builtin(AUTHORIZATION_GROUP, "subjectaccessreviews")
LOCAL_SUBJECT_ACCESS_REVIEWS = builtin(AUTHORIZATION_GROUP, "localsubjectaccessreviews")

AUTH_REVIEWS: tuple[ResourceDef, ...] = (
    SELF_SUBJECT_REVIEWS, TOKEN_REVIEWS, LOCAL_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_ACCESS_REVIEWS,
    SELF_SUBJECT_RULES_REVIEWS, SUBJECT_ACCESS_REVIEWS,
)
