"""The vocabulary of the enterprise dossier, shared by the database, the API and the CLI."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "DEPARTMENTS",
    "AcceptanceVerdict",
    "CreditKind",
    "CreditStatus",
    "DepartmentInfo",
    "EnterpriseStatus",
    "InspectionKind",
    "InspectionResult",
    "PenaltyStatus",
    "PlanStatus",
    "RectificationStatus",
    "RepairStatus",
    "Role",
]


class DepartmentInfo(NamedTuple):
    code: str
    name_zh: str
    name_en: str


# The departments of the integrated law-enforcement reform ("大综合一体化"); codes are stable.
DEPARTMENTS = (
    DepartmentInfo("market", "市场监督管理局", "Market Regulation"),
    DepartmentInfo("ecology", "生态环境局", "Ecology and Environment"),
    DepartmentInfo("emergency", "应急管理局", "Emergency Management"),
    DepartmentInfo("enforcement", "综合行政执法局", "Comprehensive Law Enforcement"),
    DepartmentInfo("fire", "消防救援大队", "Fire and Rescue"),
    DepartmentInfo("planning", "自然资源和规划局", "Natural Resources and Planning"),
    DepartmentInfo("transport", "交通运输局", "Transport"),
    DepartmentInfo("health", "卫生健康局", "Health"),
    DepartmentInfo("agriculture", "农业农村局", "Agriculture and Rural Affairs"),
    DepartmentInfo("culture", "文化广电旅游局", "Culture and Tourism"),
)


class Role(StrEnum):
    """What a client of the hub is for."""

    DEPARTMENT = "department"  # a department's system reading shared records
    AUDITOR = "auditor"  # reads the access log; no enterprise data unless a policy grants it
    ADMIN = "admin"  # operates the hub; no enterprise data unless a policy grants it
    # An enterprise's own credential: its own dossier as departments share it, and who read
    # it (hub/schema/roots.py says which root fields; loaders read no other enterprise).
    ENTERPRISE = "enterprise"


class EnterpriseStatus(StrEnum):
    ACTIVE = "active"  # 存续
    SUSPENDED = "suspended"  # 停业
    REVOKED = "revoked"  # 吊销
    DEREGISTERED = "deregistered"  # 注销


class CreditKind(StrEnum):
    RATING = "rating"  # 信用评级
    BAD_RECORD = "bad_record"  # 失信记录
    COMMENDATION = "commendation"  # 表彰


class CreditStatus(StrEnum):
    ACTIVE = "active"
    REPAIRED = "repaired"  # 信用修复后移出
    EXPIRED = "expired"
    REVOKED = "revoked"


class RepairStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class InspectionKind(StrEnum):
    ROUTINE = "routine"  # 日常检查
    RANDOM = "random"  # 双随机抽查
    JOINT = "joint"  # 综合查一次
    CAMPAIGN = "campaign"  # 专项整治


class PlanStatus(StrEnum):
    """Where a planned inspection (检查计划) stands: open while planned."""

    PLANNED = "planned"
    DONE = "done"  # carried out; the plan may name the inspection that did
    CANCELLED = "cancelled"


class InspectionResult(StrEnum):
    NO_PROBLEM = "no_problem"
    PROBLEMS_FOUND = "problems_found"
    NOT_OPERATING = "not_operating"  # 未经营 / 未找到


class PenaltyStatus(StrEnum):
    DECIDED = "decided"
    PAID = "paid"
    ENFORCED = "enforced"  # 强制执行
    UNDER_REVIEW = "under_review"  # 复议或诉讼中
    REVOKED = "revoked"
    EXEMPT = "exempt"  # 首违不罚 / 轻微不罚: a minor first offence, no penalty imposed


class RectificationStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"  # awaiting acceptance
    ACCEPTED = "accepted"
    FAILED = "failed"  # acceptance failed
    OVERDUE = "overdue"  # deadline passed without an accepted rectification


class AcceptanceVerdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"


class Colour(StrEnum):
    """An enterprise's three-colour code (三色码), from its shared records by the rules in
    policies/colours.csv."""

    GREEN = "green"  # inspected, nothing open against it (绿码)
    YELLOW = "yellow"  # problems, fixed or being fixed in time (黄码)
    BLACK = "black"  # rectification failed or overdue (黑码)

    @property
    def severity(self) -> int:
        return ("green", "yellow", "black").index(self.value)
