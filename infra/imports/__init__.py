"""Imports (导入): spreadsheets people already keep, turned into commands through the real command path.

`tables` reads an uploaded XLSX or CSV (UTF-8, UTF-8 with BOM, or GBK as Excel saves it in China)
into numbered rows and writes the annotated result and the template; `tasks` imports a 任务分解表.
Both the CLI (`dudao import tasks FILE`) and HTTP (`POST /campaigns/{id}/imports`) call `tasks`.
"""
