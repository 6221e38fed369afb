using System.Text.Json;

namespace CoeffTune.Tests.Cli;

public sealed class ToyCommandTests : IDisposable
{
    private readonly TempDir temp = new();

    private string dir => temp.Path;

    public void Dispose() => temp.Dispose();

    [Fact]
    public void Toy_writes_the_settings_in_order_and_says_which_claims_hold()
    {
        var (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(2), "toy", "--out", dir, "--seeds", "2", "--steps", "300");
        Assert.True(code == 0, stderr);
        var j = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "toy.json"))).RootElement;
        var settings = j.GetProperty("settings").EnumerateArray().ToList();
        Assert.Equal(new[] { "(i)", "(ii)", "(iii)", "(iv)" }, settings.Select(s => s.GetProperty("name").GetString()));
        Assert.True(settings[0].GetProperty("mse_mean").GetDouble() >= 0.25 - 1e-6);
        Assert.True(settings[2].GetProperty("mse_mean").GetDouble() < 1e-3);
        Assert.True(File.Exists(Path.Combine(dir, "toy.png")));
        Assert.Contains("holds", stdout);
        Assert.Contains("DOES NOT HOLD", stdout);                 // (ii) matches the target here, against the paper
    }
}
