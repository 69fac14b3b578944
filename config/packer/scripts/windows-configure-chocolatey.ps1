# kiln: installs Chocolatey on a Windows builder (Azure, or any Packer template that runs it),
# from the `repository` given (a Chocolatey feed whose install.ps1 is at its root), else from
# chocolatey.org. `chocolateyVersion` pins the version the installer fetches.
$ErrorActionPreference = 'Stop'
Set-ExecutionPolicy Bypass -Scope Process -Force
[System.Net.ServicePointManager]::SecurityProtocol = [System.Net.ServicePointManager]::SecurityProtocol -bor 3072
if (Get-Command choco -ErrorAction SilentlyContinue) {
  Write-Output 'Chocolatey is installed'
  exit 0
}
$installer = 'https://community.chocolatey.org/install.ps1'
if ($env:repository) {
  $installer = ($env:repository.TrimEnd('/')) + '/install.ps1'
}
Write-Output "Installing Chocolatey from $installer"
Invoke-Expression ((New-Object System.Net.WebClient).DownloadString($installer))
