# kiln: installs the bake's packages with Chocolatey. Environment (Rosco's variables):
#   packages      space-separated, each `name` or `name=version` (kiln's nupkg packages parameter)
#   repository    a Chocolatey feed used as the only source, when set
#   upgrade       "true": upgrade every installed package first
# Each package is one argument to choco: a value never becomes an option or a command.
$ErrorActionPreference = 'Stop'
$source = @()
if ($env:repository) {
  $source = @('--source', $env:repository)
}
if ($env:upgrade -eq 'true') {
  & choco upgrade all -y --no-progress @source
  if ($LASTEXITCODE -ne 0) { throw "choco upgrade all failed ($LASTEXITCODE)" }
}
foreach ($package in ($env:packages -split ' ' | Where-Object { $_ -ne '' })) {
  if ($package.StartsWith('-')) { throw "refusing package '$package': it reads as an option" }
  $name, $version = $package -split '=', 2
  $args = @('install', $name, '-y', '--no-progress') + $source
  if ($version) { $args += @('--version', $version) }
  Write-Output "choco $($args -join ' ')"
  & choco @args
  if ($LASTEXITCODE -ne 0) { throw "choco install $name failed ($LASTEXITCODE)" }
}
