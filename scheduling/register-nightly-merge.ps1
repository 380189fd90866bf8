<#
.SYNOPSIS
  地域福祉計画 夜間集約(python -m pipeline merge)を Windows のタスク スケジューラに登録します。

.DESCRIPTION
  毎晩 -At(既定 02:00)に、このフォルダーの .venv の Python で merge を実行するタスクを作ります。
  - ユーザーがログオンしているかどうかにかかわらず実行します(登録するときにパスワードを尋ねます)。
  - その時刻に PC が止まっていた・スリープしていた夜は、次に起動したときにすぐ実行します(StartWhenAvailable)。
  - 作業フォルダーはこのフォルダーです(pipeline.toml、inbox、outbox はここから探します)。
  - 何をしたかは outbox\logs\pipeline.log に書かれます(最後の行が exit=N)。Python が起動できなかったときの
    出力だけは outbox\logs\console.log に残ります。前回の結果は python -m pipeline status で確認できます。
  同じ名前のタスクがあれば置き換えます。ログオンしていないときはネットワーク ドライブ(Z: など)が
  つながっていないため、pipeline.toml の inbox / outbox は \\server\share\... の形で書いてください。

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File scheduling\register-nightly-merge.ps1
.EXAMPLE
  powershell -ExecutionPolicy Bypass -File scheduling\register-nightly-merge.ps1 -Folder C:\welfare-plan -At 03:30
.EXAMPLE
  powershell -ExecutionPolicy Bypass -File scheduling\register-nightly-merge.ps1 -Collect
  (メールボックスを設定したとき: 集約の前に collect で返送メールを取り込みます。merge --collect)
#>
param(
    [string]$Folder = (Split-Path -Parent $PSScriptRoot),  # the project folder (this script's parent)
    [string]$At = "02:00",
    [string]$TaskName = "地域福祉計画 夜間集約",
    [string]$User = "$env:USERDOMAIN\$env:USERNAME",
    [switch]$Collect  # merge --collect: read the [mailbox] folder first
)
$ErrorActionPreference = "Stop"

$Folder = (Resolve-Path $Folder).Path
$Python = Join-Path $Folder ".venv\Scripts\python.exe"
if (-not (Test-Path $Python)) {
    throw "$Python がありません。README の Windows の手順で .venv を作ってから、もう一度実行してください。"
}

# cmd /c only to keep what Python prints before its own log opens (a broken .venv); UTF-8 on purpose.
$Command = 'if not exist outbox\logs mkdir outbox\logs & set PYTHONUTF8=1& ' +
           '".venv\Scripts\python.exe" -m pipeline merge' + $(if ($Collect) { ' --collect' } else { '' }) +
           ' >> outbox\logs\console.log 2>&1'
$Action = New-ScheduledTaskAction -Execute "cmd.exe" -Argument "/d /c $Command" -WorkingDirectory $Folder
$Trigger = New-ScheduledTaskTrigger -Daily -At $At
$Settings = New-ScheduledTaskSettingsSet `
    -StartWhenAvailable `
    -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
    -MultipleInstances IgnoreNew `
    -ExecutionTimeLimit (New-TimeSpan -Hours 6)

# "Run whether user is logged on or not": the task stores the account's password (LogonType Password).
$Credential = Get-Credential -UserName $User -Message "夜間集約を実行するアカウント($User)のパスワードを入力してください。"
Register-ScheduledTask -TaskName $TaskName -Action $Action -Trigger $Trigger -Settings $Settings `
    -User $Credential.UserName -Password $Credential.GetNetworkCredential().Password -RunLevel Limited -Force | Out-Null

Write-Host "登録しました: 「$TaskName」 毎日 $At、作業フォルダー $Folder"
Write-Host "ログ: $Folder\outbox\logs\pipeline.log(前回の結果: .venv\Scripts\python -m pipeline status)"
Write-Host "今すぐ試すには: Start-ScheduledTask -TaskName '$TaskName'"
