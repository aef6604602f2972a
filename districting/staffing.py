"""The staffing plan: interviewers, instructor-controllers and points per settlement."""

from __future__ import annotations

import pandas as pd

from districting.layers import PlanLayers

STAFFING_COLUMNS = [
    "settlement_id", "settlement_name", "residents", "dwellings", "workload",
    "interviewers", "instructor_controllers", "registration_points", "interviewers_per_instructor",
    "cd_bound_exceptions",
]


def staffing_table(layers: PlanLayers) -> pd.DataFrame:
    """One row per settlement and a ``TOTAL`` row: one interviewer per counting district,
    one instructor-controller per instructor district, one point per registration district.
    """
    cds = pd.DataFrame(layers.counting_districts.drop(columns="geometry"))
    names = dict(zip(layers.settlements["settlement_id"], layers.settlements["settlement_name"],
                     strict=True))
    grouped = cds.groupby("settlement_id", sort=True)
    table = pd.DataFrame({
        "residents": grouped["residents"].sum(),
        "dwellings": grouped["dwellings"].sum(),
        "workload": grouped["workload"].sum().round(1),
        "interviewers": grouped["cd_code"].nunique(),
        "instructor_controllers": grouped["id_code"].nunique(),
        "registration_points": grouped["rd_code"].nunique(),
        "cd_bound_exceptions": grouped["bound_exception"].apply(lambda s: int((s != "").sum())),
    }).reset_index()
    table.insert(1, "settlement_name", table["settlement_id"].map(names))
    total = table.drop(columns=["settlement_id", "settlement_name"]).sum()
    total_row = {"settlement_id": "TOTAL", "settlement_name": "", **total.to_dict()}
    table = pd.concat([table, pd.DataFrame([total_row])], ignore_index=True)
    counts = ["residents", "dwellings", "interviewers", "instructor_controllers",
              "registration_points", "cd_bound_exceptions"]
    table[counts] = table[counts].astype("int64")
    table["workload"] = table["workload"].astype(float).round(1)
    table["interviewers_per_instructor"] = (
        table["interviewers"] / table["instructor_controllers"]
    ).round(2)
    return table[STAFFING_COLUMNS]
