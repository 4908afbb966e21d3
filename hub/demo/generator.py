"""Demo dossiers generated from a seed: the same seed and reference day give the same rows."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from typing import Any, cast

from sqlalchemy import Table

from hub import models
from hub.demo.vocabulary import (
    ACCEPTANCE_OPINIONS,
    BRANDS,
    CASE_ABBREVIATIONS,
    GIVEN_NAMES,
    INDUSTRIES,
    PLAN_SUBJECTS,
    REGIONS,
    REQUIREMENT_CODES,
    SURNAMES,
    VIOLATIONS,
    Industry,
    Region,
    Violation,
)
from hub.domain import (
    DEPARTMENTS,
    AcceptanceVerdict,
    CreditKind,
    CreditStatus,
    EnterpriseStatus,
    InspectionKind,
    InspectionResult,
    PenaltyStatus,
    PlanStatus,
    RectificationStatus,
    RepairStatus,
)
from hub.records import month_of, months_after
from hub.uscc import ALPHABET, check_character

__all__ = ["AS_OF", "TABLES", "DemoGenerator"]

# Demo dates are relative to this day, not to the clock, so a seed always gives the same data.
AS_OF = date(2026, 11, 1)

Rows = dict[Table, list[dict[str, Any]]]

ENTERPRISE = cast(Table, models.Enterprise.__table__)
INSPECTION = cast(Table, models.Inspection.__table__)
PARTICIPANT = cast(Table, models.InspectionParticipant.__table__)
FINDING = cast(Table, models.InspectionFinding.__table__)
PENALTY = cast(Table, models.Penalty.__table__)
RECTIFICATION = cast(Table, models.Rectification.__table__)
ASSISTANT = cast(Table, models.RectificationAssistant.__table__)
ACCEPTANCE = cast(Table, models.Acceptance.__table__)
CREDIT_RECORD = cast(Table, models.CreditRecord.__table__)
CREDIT_REPAIR = cast(Table, models.CreditRepair.__table__)
PLAN = cast(Table, models.InspectionPlan.__table__)
# Parents before children, so foreign keys hold at every insert.
TABLES = (
    ENTERPRISE,
    INSPECTION,
    PARTICIPANT,
    FINDING,
    PENALTY,
    RECTIFICATION,
    ASSISTANT,
    ACCEPTANCE,
    CREDIT_RECORD,
    CREDIT_REPAIR,
    PLAN,
)
SOURCE_ID_KINDS = {
    INSPECTION: "INS",
    PENALTY: "PEN",
    RECTIFICATION: "RECT",
    ACCEPTANCE: "ACC",
    CREDIT_RECORD: "CRD",
    CREDIT_REPAIR: "REP",
    PLAN: "PLAN",
}
REPAIR_OPINIONS = {
    RepairStatus.APPROVED: "已履行处罚决定并完成整改，准予信用修复",
    RepairStatus.REJECTED: "整改尚未验收通过，不予修复",
    RepairStatus.PENDING: None,
}
DEPARTMENT_INDEX = {department.code: index for index, department in enumerate(DEPARTMENTS)}
INDUSTRY = {industry.name: industry for industry in INDUSTRIES}
# Enterprises a department draws for a spot check or a campaign in the next two months.
PLANNED_SHARE = 0.12


def organization_code(rng: random.Random) -> str:
    """A 9-character organization code (GB 11714) with its own check character."""
    body = "".join(rng.choices(ALPHABET, k=8))
    values = [int(c) if c.isdigit() else ord(c) - ord("A") + 10 for c in body]
    remainder = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return body + {10: "X", 11: "0"}.get(remainder, str(remainder))


class DemoGenerator:
    """Makes enterprises with a believable history of records, batch by batch."""

    def __init__(self, seed: int, as_of: date = AS_OF) -> None:
        self.rng = random.Random(seed)
        # Plans draw from their own generator: the histories stay as they were before them.
        self.planner = random.Random(f"plans {seed}")
        self.as_of = as_of
        self.ids: Counter[str] = Counter()
        self.case_numbers: Counter[tuple[str, int]] = Counter()
        self.usccs: set[str] = set()
        self.told = False  # whether the story of departments working together is in

    def batch(self, enterprises: int) -> Rows:
        rows: Rows = {table: [] for table in TABLES}
        for _ in range(enterprises):
            self._enterprise(rows)
        if not self.told:
            self.told = self._working_together(rows)
        self._plans(rows)
        return rows

    def _plans(self, rows: Rows) -> None:
        """What departments plan to inspect in the two months after the reference day's
        (检查计划): each follows up its open orders to active enterprises (整改复查) in the
        month of their deadline, or the first of the two for those past it, and draws a
        share of the enterprises in its remit for spot checks (双随机), routine visits and
        campaigns, a few of them since cancelled; last month's plans are done. One plan per
        department, enterprise and month; where two or three departments plan one
        enterprise in one month (the window conflict's plant, the README's chemical plant),
        the hub suggests that they go together (综合查一次)."""
        rng = self.planner
        first = months_after(month_of(self.as_of), 1)
        last = months_after(first, 1)
        active = {row["id"]: row for row in rows[ENTERPRISE]
                  if row["status"] is EnterpriseStatus.ACTIVE}  # fmt: skip
        found: dict[int, str] = {}  # an inspection's first finding's category
        for finding in rows[FINDING]:
            found.setdefault(finding["inspection_id"], finding["category"])
        planned: set[tuple[str, int, str]] = set()

        def plan(
            owner: str,
            enterprise_id: int,
            month: str,
            subject: str,
            kind: InspectionKind,
            status: PlanStatus = PlanStatus.PLANNED,
        ) -> None:
            if (owner, enterprise_id, month) not in planned:
                planned.add((owner, enterprise_id, month))
                self._record(rows, PLAN, owner, enterprise_id=enterprise_id, month=month,
                             subject=subject, kind=kind, status=status,
                             inspection_id=None)  # fmt: skip

        for order in rows[RECTIFICATION]:
            if order["enterprise_id"] in active and order["status"] in (
                RectificationStatus.IN_PROGRESS, RectificationStatus.SUBMITTED
            ):  # fmt: skip
                month = max(first, month_of(order["deadline"]))
                if month <= last:
                    subject = f"整改复查：{found.get(order['inspection_id'], '整改落实')}"
                    plan(order["owner"], order["enterprise_id"], month, subject,
                         InspectionKind.ROUTINE)  # fmt: skip
        # Last month's plans are history: about half its inspections were planned, and the
        # plan names the inspection that carried it out.
        previous = months_after(month_of(self.as_of), -1)
        for inspection in rows[INSPECTION]:
            month = month_of(inspection["inspected_on"])
            if month == previous and rng.random() < 0.5:
                owner = inspection["owner"]
                self._record(rows, PLAN, owner, enterprise_id=inspection["enterprise_id"],
                             month=month, subject=rng.choice(PLAN_SUBJECTS[owner]),
                             kind=inspection["kind"], status=PlanStatus.DONE,
                             inspection_id=inspection["id"])  # fmt: skip
        kinds = (InspectionKind.RANDOM, InspectionKind.ROUTINE, InspectionKind.CAMPAIGN)
        for enterprise_id, enterprise in active.items():
            if rng.random() >= PLANNED_SHARE:
                continue
            owner = rng.choice(INDUSTRY[enterprise["industry"]].inspectors)
            status = PlanStatus.CANCELLED if rng.random() < 0.1 else PlanStatus.PLANNED
            plan(owner, enterprise_id, rng.choice((first, last)),
                 rng.choice(PLAN_SUBJECTS[owner]), rng.choices(kinds, weights=(70, 20, 10))[0],
                 status)  # fmt: skip

    def _working_together(self, rows: Rows) -> bool:
        """The reform's story on one chemical plant, in the first batch that has one: ecology
        orders the paint shop's windows shut against VOC fumes while emergency management,
        inspecting jointly with fire rescue, orders them open against explosive vapour
        (标准打架); emergency's order is assisted by fire rescue (联合帮扶整改), and ecology
        transfers its penalty case to comprehensive law enforcement (案件移送). Added after
        the random histories, so those stay as they were."""
        plants = [row for row in rows[ENTERPRISE] if row["industry"] == "化工"
                  and row["status"] is EnterpriseStatus.ACTIVE]  # fmt: skip
        if not plants:
            return False
        plant = plants[0]
        division = next(r.division for r in REGIONS if r.name == plant["region"])
        orders = (
            ("ecology", InspectionKind.ROUTINE, (), "废气治理",
             "喷涂车间门窗敞开作业，VOCs无组织排放",
             "喷涂作业期间关闭车间门窗，负压密闭收集VOCs。整改完成后申请验收。", "voc-enclosed",
             ()),
            ("emergency", InspectionKind.JOINT, ("fire",), "通风防爆",
             "喷涂车间可燃气体积聚，通风不良",
             "保持车间门窗常开、加强自然通风，防止可燃气体积聚。整改完成后申请验收。",
             "ventilation-open", ("fire",)),
        )  # fmt: skip
        for days, (owner, kind, participants, category, finding, requirement, code,
                   helpers) in zip((12, 6), orders, strict=True):  # fmt: skip
            day = self.as_of - timedelta(days=days)
            inspection_id = self._record(
                rows, INSPECTION, owner, enterprise_id=plant["id"],
                action_code=self._action_code(division, day, owner),
                kind=kind, inspected_on=day, result=InspectionResult.PROBLEMS_FOUND,
            )  # fmt: skip
            rows[PARTICIPANT] += [{"inspection_id": inspection_id, "department": department}
                                  for department in participants]  # fmt: skip
            rows[FINDING].append({"id": self._id(FINDING), "inspection_id": inspection_id,
                                  "category": category, "description": finding})  # fmt: skip
            penalty_id = None
            if owner == "ecology":
                self.case_numbers[owner, day.year] += 1
                penalty_id = self._record(
                    rows, PENALTY, owner, enterprise_id=plant["id"],
                    inspection_id=inspection_id,
                    case_number=f"杭{CASE_ABBREVIATIONS[owner]}罚〔{day.year}〕"
                    f"{self.case_numbers[owner, day.year]}号",
                    violation="未采取密闭措施，VOCs无组织排放",
                    legal_basis="《中华人民共和国大气污染防治法》第一百零八条",
                    amount_fen=5_000_000, decided_on=day, status=PenaltyStatus.DECIDED,
                    minor_first_offence_exempt=False, decision_issued=True,
                    compliance_suggestion_issued=True, credit_repair_notice_issued=True,
                    transferred_to="enforcement",
                )  # fmt: skip
            order_id = self._record(
                rows, RECTIFICATION, owner, enterprise_id=plant["id"],
                inspection_id=inspection_id, penalty_id=penalty_id, requirement=requirement,
                requirement_codes=code, ordered_on=day, deadline=day + timedelta(days=90),
                status=RectificationStatus.IN_PROGRESS,
            )  # fmt: skip
            rows[ASSISTANT] += [{"rectification_id": order_id, "department": department}
                                for department in helpers]  # fmt: skip
        return True

    def _id(self, table: Table) -> int:
        self.ids[table.name] += 1
        return self.ids[table.name]

    def _record(self, rows: Rows, table: Table, owner: str, **columns: Any) -> int:
        """Add one shared record with the owner's own source id; returns the hub's id."""
        record_id = self._id(table)
        source_id = f"{owner.upper()}-{SOURCE_ID_KINDS[table]}-{record_id:07d}"
        rows[table].append({"id": record_id, "owner": owner, "source_id": source_id, **columns})
        return record_id

    def _day(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randint(0, max(0, (end - start).days)))

    def _uscc(self, region: Region, industry: Industry) -> str:
        # 91: an enterprise registered by market regulation; 92: an individual business;
        # 93: a farmers' cooperative; Y1: registered by another authority.
        kind = self.rng.choices(("91", "92", "93", "Y1"), weights=(90, 5, 3, 2))[0]
        if kind == "93" and industry.name != "农副食品加工":
            kind = "91"
        while True:
            first17 = kind + region.division + organization_code(self.rng)
            code = first17 + check_character(first17)
            if code not in self.usccs:
                self.usccs.add(code)
                return code

    def _person(self) -> str:
        given = "".join(self.rng.choices(GIVEN_NAMES, k=self.rng.choice((1, 2, 2))))
        return self.rng.choice(SURNAMES) + given

    def _enterprise(self, rows: Rows) -> None:
        rng = self.rng
        region = rng.choice(REGIONS)
        industry = rng.choice(INDUSTRIES)
        town = rng.choice(region.towns)
        uscc = self._uscc(region, industry)
        suffix = {"92": "店", "93": "专业合作社"}.get(uscc[:2], "有限公司")
        brand = "".join(rng.sample(BRANDS, 2))
        enterprise_id = self._id(ENTERPRISE)
        registered_on = self._day(date(1998, 1, 1), self.as_of - timedelta(days=400))
        status = rng.choices(list(EnterpriseStatus), weights=(92, 3, 2, 3))[0]
        rows[ENTERPRISE].append(
            {
                "id": enterprise_id,
                "uscc": uscc,
                "owner": "market",
                "name": f"杭州{brand}{rng.choice(industry.terms)}{suffix}",
                "legal_representative": self._person(),
                "address": f"浙江省杭州市{region.name}{town}{rng.choice(region.roads)}"
                f"{rng.randint(1, 999)}号",
                "industry": industry.name,
                "region": region.name,
                "town": town,
                "registered_on": registered_on,
                "status": status,
            }
        )
        since = max(registered_on, self.as_of - timedelta(days=3 * 365))
        visits = rng.choices(range(9), weights=(12, 20, 22, 18, 12, 7, 4, 3, 2))[0]
        for inspected_on in sorted(self._day(since, self.as_of) for _ in range(visits)):
            self._inspection(rows, enterprise_id, region, industry, inspected_on, status)
        self._ratings(rows, enterprise_id, industry)

    def _action_code(self, division: str, day: date, owner: str) -> str:
        """A 行政行为码 as the province's own system issues them: district, day, department
        and a serial number. Registered codes are unique (hub/publishing/codes.py): the serial
        counts every inspection of the load and is never cut, so two inspections never share
        one at any size; 23 characters up to 9,999,999 inspections (a 100,000-enterprise load
        has about 400,000), at most 32 below 10^16."""
        self.ids["action"] += 1
        return f"{division}{day:%Y%m%d}{DEPARTMENT_INDEX[owner]:02d}{self.ids['action']:07d}"

    def _inspection(
        self,
        rows: Rows,
        enterprise_id: int,
        region: Region,
        industry: Industry,
        inspected_on: date,
        status: EnterpriseStatus,
    ) -> None:
        rng = self.rng
        weights = [len(industry.inspectors) - i for i in range(len(industry.inspectors))]
        owner = rng.choices(industry.inspectors, weights=weights)[0]
        kind = rng.choices(list(InspectionKind), weights=(40, 30, 15, 15))[0]
        if status is not EnterpriseStatus.ACTIVE and rng.random() < 0.5:
            result = InspectionResult.NOT_OPERATING
        else:
            result = rng.choices(
                (InspectionResult.NO_PROBLEM, InspectionResult.PROBLEMS_FOUND), weights=(55, 45)
            )[0]
        inspection_id = self._record(
            rows,
            INSPECTION,
            owner,
            enterprise_id=enterprise_id,
            action_code=self._action_code(region.division, inspected_on, owner),
            kind=kind,
            inspected_on=inspected_on,
            result=result,
        )
        if kind is InspectionKind.JOINT:
            others = [d.code for d in DEPARTMENTS if d.code != owner]
            preferred = [d for d in industry.inspectors if d != owner] or others
            participants = set(rng.sample(preferred, min(len(preferred), rng.randint(1, 2))))
            if rng.random() < 0.3:
                participants.add(rng.choice(others))
            rows[PARTICIPANT].extend(
                {"inspection_id": inspection_id, "department": department}
                for department in sorted(participants)
            )
        if result is not InspectionResult.PROBLEMS_FOUND:
            return
        options = VIOLATIONS[owner]
        found = rng.sample(options, rng.randint(1, min(2, len(options))))
        for violation in found:
            rows[FINDING].append(
                {
                    "id": self._id(FINDING),
                    "inspection_id": inspection_id,
                    "category": violation.category,
                    "description": violation.finding,
                }
            )
        penalty_id = None
        if rng.random() < 0.3:
            penalty_id = self._penalty(
                rows, enterprise_id, inspection_id, owner, found[0], inspected_on
            )
        if rng.random() < 0.85:
            self._rectification(
                rows,
                enterprise_id,
                owner,
                found,
                inspected_on,
                inspection_id=inspection_id,
                penalty_id=penalty_id,
            )

    def _penalty(
        self,
        rows: Rows,
        enterprise_id: int,
        inspection_id: int,
        owner: str,
        violation: Violation,
        inspected_on: date,
    ) -> int:
        rng = self.rng
        decided_on = min(self.as_of, inspected_on + timedelta(days=rng.randint(7, 45)))
        exempt = rng.random() < 0.12
        amount_yuan = (
            0 if exempt else max(200, round(violation.max_fine_yuan * rng.uniform(0.02, 0.5), -2))
        )
        imposed = [status for status in PenaltyStatus if status is not PenaltyStatus.EXEMPT]
        status = (
            PenaltyStatus.EXEMPT if exempt else rng.choices(imposed, weights=(20, 65, 5, 7, 3))[0]
        )
        self.case_numbers[owner, decided_on.year] += 1
        case_number = (
            f"杭{CASE_ABBREVIATIONS[owner]}罚〔{decided_on.year}〕"
            f"{self.case_numbers[owner, decided_on.year]}号"
        )
        three_documents = rng.random() < 0.8  # 三书同达, adopted by most departments
        penalty_id = self._record(
            rows,
            PENALTY,
            owner,
            enterprise_id=enterprise_id,
            inspection_id=inspection_id,
            case_number=case_number,
            violation=violation.offence,
            legal_basis=violation.legal_basis,
            amount_fen=int(amount_yuan) * 100,
            decided_on=decided_on,
            status=status,
            minor_first_offence_exempt=exempt,
            decision_issued=True,
            compliance_suggestion_issued=three_documents,
            credit_repair_notice_issued=three_documents,
            transferred_to=None,
        )
        if not exempt and amount_yuan >= 10_000 and rng.random() < 0.6:
            self._bad_record(
                rows,
                enterprise_id,
                owner,
                violation,
                case_number,
                amount_yuan,
                decided_on,
                paid=status is PenaltyStatus.PAID,
            )
        return penalty_id

    def _rectification(
        self,
        rows: Rows,
        enterprise_id: int,
        owner: str,
        found: list[Violation],
        ordered_on: date,
        *,
        inspection_id: int,
        penalty_id: int | None,
    ) -> None:
        rng = self.rng
        deadline = ordered_on + timedelta(days=rng.choice((15, 30, 30, 60)))
        acceptance: tuple[AcceptanceVerdict, date] | None = None
        if deadline >= self.as_of:
            status = rng.choice((RectificationStatus.IN_PROGRESS, RectificationStatus.SUBMITTED))
        else:
            roll = rng.random()
            if roll < 0.68:
                status = RectificationStatus.ACCEPTED
                accepted_on = max(ordered_on, deadline - timedelta(days=rng.randint(0, 10)))
                acceptance = (AcceptanceVerdict.PASSED, accepted_on)
            elif roll < 0.82:  # a failed acceptance puts the order back in progress
                status = RectificationStatus.IN_PROGRESS
                accepted_on = min(self.as_of, deadline + timedelta(days=rng.randint(1, 10)))
                acceptance = (AcceptanceVerdict.FAILED, accepted_on)
            else:  # past its deadline and not accepted: overdue, as the hub computes it
                status = RectificationStatus.IN_PROGRESS
        rectification_id = self._record(
            rows,
            RECTIFICATION,
            owner,
            enterprise_id=enterprise_id,
            inspection_id=inspection_id,
            penalty_id=penalty_id,
            requirement="；".join(v.requirement for v in found) + "。整改完成后申请验收。",
            requirement_codes=" ".join(
                sorted(
                    REQUIREMENT_CODES[v.requirement]
                    for v in found
                    if v.requirement in REQUIREMENT_CODES
                )
            ),
            ordered_on=ordered_on,
            deadline=deadline,
            status=status,
        )
        if rng.random() < 0.2:  # 联合帮扶整改: other departments help
            helpers = rng.sample(
                [d.code for d in DEPARTMENTS if d.code != owner], rng.randint(1, 2)
            )
            rows[ASSISTANT].extend(
                {"rectification_id": rectification_id, "department": department}
                for department in sorted(helpers)
            )
        if acceptance is not None:
            verdict, accepted_on = acceptance
            self._record(
                rows,
                ACCEPTANCE,
                owner,
                rectification_id=rectification_id,
                accepted_on=accepted_on,
                verdict=verdict,
                opinion=rng.choice(ACCEPTANCE_OPINIONS[verdict is AcceptanceVerdict.PASSED]),
            )

    def _bad_record(
        self,
        rows: Rows,
        enterprise_id: int,
        owner: str,
        violation: Violation,
        case_number: str,
        amount_yuan: float,
        issued_on: date,
        *,
        paid: bool,
    ) -> None:
        rng = self.rng
        serious = amount_yuan >= 100_000
        expires_on = issued_on + timedelta(days=3 * 365 if serious else 365)
        status = CreditStatus.EXPIRED if expires_on < self.as_of else CreditStatus.ACTIVE
        repair: tuple[date, date | None, RepairStatus] | None = None
        earliest_repair = issued_on + timedelta(days=90)
        if (
            status is CreditStatus.ACTIVE
            and paid
            and earliest_repair < self.as_of
            and rng.random() < 0.4
        ):
            applied_on = self._day(earliest_repair, self.as_of)
            outcome = rng.choices(list(RepairStatus), weights=(15, 70, 15))[0]
            decided_on = (
                None
                if outcome is RepairStatus.PENDING
                else min(self.as_of, applied_on + timedelta(days=rng.randint(3, 20)))
            )
            repair = (applied_on, decided_on, outcome)
            if outcome is RepairStatus.APPROVED:
                status = CreditStatus.REPAIRED
        record_id = self._record(
            rows,
            CREDIT_RECORD,
            owner,
            enterprise_id=enterprise_id,
            kind=CreditKind.BAD_RECORD,
            level="serious" if serious else "general",
            reason=f"{violation.offence}，罚款{int(amount_yuan)}元（{case_number}）",
            issued_on=issued_on,
            expires_on=expires_on,
            status=status,
        )
        if repair is not None:
            applied_on, decided_on, outcome = repair
            self._record(
                rows,
                CREDIT_REPAIR,
                owner,
                credit_record_id=record_id,
                applied_on=applied_on,
                decided_on=decided_on,
                status=outcome,
                opinion=REPAIR_OPINIONS[outcome],
            )

    def _ratings(self, rows: Rows, enterprise_id: int, industry: Industry) -> None:
        rng = self.rng
        ratings = [("market", ("A", "B", "C", "D"), (45, 40, 12, 3), "企业信用风险分类评价")]
        if "ecology" in industry.inspectors:
            ratings.append(
                ("ecology", ("green", "blue", "yellow", "red"), (30, 50, 15, 5), "企业环境信用评价")
            )
        for owner, levels, weights, reason in ratings:
            if rng.random() < 0.7:
                issued_on = self.as_of - timedelta(days=rng.randint(0, 540))
                expires_on = issued_on + timedelta(days=365)
                self._record(
                    rows,
                    CREDIT_RECORD,
                    owner,
                    enterprise_id=enterprise_id,
                    kind=CreditKind.RATING,
                    level=rng.choices(levels, weights=weights)[0],
                    reason=f"{issued_on.year}年度{reason}",
                    issued_on=issued_on,
                    expires_on=expires_on,
                    status=CreditStatus.ACTIVE
                    if expires_on >= self.as_of
                    else CreditStatus.EXPIRED,
                )
        if rng.random() < 0.05:
            issued_on = self.as_of - timedelta(days=rng.randint(0, 900))
            self._record(
                rows,
                CREDIT_RECORD,
                "market",
                enterprise_id=enterprise_id,
                kind=CreditKind.COMMENDATION,
                level=rng.choice(("municipal", "provincial")),
                reason="守合同重信用企业",
                issued_on=issued_on,
                expires_on=None,
                status=CreditStatus.ACTIVE,
            )
