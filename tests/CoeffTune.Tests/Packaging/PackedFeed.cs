using System.Diagnostics;
using System.Xml.Linq;

namespace CoeffTune.Tests.Packaging;

/// <summary>
/// Packs the CoeffTune library and the CoeffTune.Cli tool once into a local folder feed inside a scratch
/// folder, as a release would with `dotnet pack`, and installs the tool from it on first request.
/// Everything a consumer does happens in that folder, outside the source tree; NuGet extracts CoeffTune
/// into a package folder of its own there, reading the rest from the machine's NuGet cache, which is
/// only read, and asks no registry.
/// </summary>
public sealed class PackedFeed : IDisposable
{
    public string Work { get; } = Path.Combine(Path.GetTempPath(), "coefftune-packaging-" + Guid.NewGuid().ToString("N"));
    public string Feed => Path.Combine(Work, "feed");
    public string SourceRoot { get; }
    /// <summary>The packages' version (Directory.Build.props).</summary>
    public string Version { get; }
    /// <summary>The TorchSharp version the library depends on (Directory.Build.props).</summary>
    public string TorchSharpVersion { get; }
    /// <summary>The LibTorch version the CPU runtime package must have (Directory.Build.props).</summary>
    public string LibTorchVersion { get; }
    /// <summary>The machine's NuGet global packages folder: read, never written.</summary>
    public string MachinePackages { get; }
    /// <summary>A package folder of the scratch folder's own, for what the machine's lacks (CoeffTune itself).</summary>
    public string ConsumerPackages => Path.Combine(Work, "packages");
    public string LibraryPackage => Path.Combine(Feed, $"CoeffTune.{Version}.nupkg");
    public string ToolPackage => Path.Combine(Feed, $"CoeffTune.Cli.{Version}.nupkg");
    public TimeSpan PackTime { get; }
    public List<string> Steps { get; } = new();
    private readonly Lazy<string> tool;

    public PackedFeed()
    {
        SourceRoot = TestEnvironment.SourceRoot ?? throw new InvalidOperationException("the tests do not run from a source tree");
        var props = XDocument.Load(Path.Combine(SourceRoot, "Directory.Build.props"));
        Version = props.Descendants("Version").Single().Value;
        LibTorchVersion = props.Descendants("LibTorchVersion").Single().Value;
        TorchSharpVersion = props.Descendants("TorchSharpVersion").Single().Value;
        Directory.CreateDirectory(Work);
        MachinePackages = FindMachinePackages();

        // The NuGet settings of every consumer command run in the scratch folder: the feed as the only source
        // (no registry look-ups: what CoeffTune depends on is already in the machine's cache, because the
        // tests themselves reference it), the machine's cache as a read-only fallback.
        File.WriteAllText(Path.Combine(Work, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{ConsumerPackages}" /></config>
              <packageSources><clear /><add key="coefftune-feed" value="{Feed}" /></packageSources>
              <fallbackPackageFolders><add key="machine" value="{MachinePackages}" /></fallbackPackageFolders>
            </configuration>
            """);

        var clock = Stopwatch.StartNew();
        // `dotnet test` restored both projects moments ago; the tool's publish folder goes to the scratch folder.
        Run("dotnet", SourceRoot, TimeSpan.FromMinutes(8), BuildEnvironment(),
            "pack", "src/CoeffTune/CoeffTune.csproj", "-c", "Release", "-o", Feed, "--no-restore");
        Run("dotnet", SourceRoot, TimeSpan.FromMinutes(8), BuildEnvironment(),
            "pack", "src/CoeffTune.Cli/CoeffTune.Cli.csproj", "-c", "Release", "-o", Feed, "--no-restore", $"-p:PublishDir={Path.Combine(Work, "publish")}/");
        PackTime = clock.Elapsed;
        tool = new Lazy<string>(InstallTool);
    }

    /// <summary>The `coefftune` command of the tool installed from the feed into a tool folder of the scratch folder.</summary>
    public string Tool => tool.Value;

    private string InstallTool()
    {
        var toolPath = Path.Combine(Work, "tools");
        Dotnet(Work, TimeSpan.FromMinutes(5), "tool", "install", "CoeffTune.Cli", "--version", Version, "--tool-path", toolPath, "--add-source", Feed);
        return Path.Combine(toolPath, "coefftune");
    }

    /// <summary>Runs `dotnet ARGS` in <paramref name="dir"/> as a consumer; fails with its output unless it exits with 0.</summary>
    public ProcessResult Dotnet(string dir, TimeSpan timeout, params string[] args) => Run("dotnet", dir, timeout, ConsumerEnvironment(), args);

    /// <summary>Runs a program, records its time; fails with its output unless it exits with 0.</summary>
    public ProcessResult Run(string file, string dir, TimeSpan timeout, Dictionary<string, string?> env, params string[] args)
    {
        var r = ProcessResult.Run(file, args, dir, timeout, env);
        Steps.Add($"{r.Elapsed.TotalSeconds,6:F1} s  {Path.GetFileName(file)} {string.Join(" ", args.Select(a => a.Replace(Work, "$WORK")))}");
        Assert.True(r.Code == 0, $"{file} {string.Join(" ", args)} exited with {r.Code}\n{r.Out}\n{r.Err}");
        return r;
    }

    /// <summary>The environment of the packing commands: no MSBuild state inherited from the test host.</summary>
    public static Dictionary<string, string?> BuildEnvironment()
    {
        var env = new Dictionary<string, string?> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1" };
        foreach (var name in Environment.GetEnvironmentVariables().Keys.Cast<string>())
            if (name.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)) env[name] = null;
        return env;
    }

    /// <summary>The environment of a consumer's process: as for packing, and no COEFFTUNE_CACHE (the tests set
    /// it for themselves), the user cache folder and the NuGet package folder inside the scratch folder.</summary>
    public Dictionary<string, string?> ConsumerEnvironment()
    {
        var env = BuildEnvironment();
        env["COEFFTUNE_CACHE"] = null;
        env["XDG_CACHE_HOME"] = Path.Combine(Work, "xdg");
        env["NUGET_PACKAGES"] = ConsumerPackages;
        return env;
    }

    private static string FindMachinePackages()
    {
        var fromEnv = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (!string.IsNullOrWhiteSpace(fromEnv)) return Path.GetFullPath(fromEnv);
        var r = ProcessResult.Run("dotnet", ["nuget", "locals", "global-packages", "--list"], Path.GetTempPath(), TimeSpan.FromMinutes(1), BuildEnvironment());
        var line = r.Out.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("global-packages:", StringComparison.Ordinal));
        if (r.Code != 0 || line is null) throw new InvalidOperationException($"could not find the NuGet global packages folder: {r.Out}{r.Err}");
        return line["global-packages:".Length..].Trim().TrimEnd('/');
    }

    public void Dispose()
    {
        try { Directory.Delete(Work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A finished child process: exit code, both output streams, wall time.</summary>
public sealed record ProcessResult(int Code, string Out, string Err, TimeSpan Elapsed)
{
    public static ProcessResult Run(string file, IEnumerable<string> args, string dir, TimeSpan timeout, IReadOnlyDictionary<string, string?> env)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env)
        {
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        }
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new TimeoutException($"{file} {string.Join(" ", args)} did not finish in {timeout}\n{stdout.Result}\n{stderr.Result}");
        }
        p.WaitForExit();
        return new ProcessResult(p.ExitCode, stdout.Result, stderr.Result, clock.Elapsed);
    }
}
