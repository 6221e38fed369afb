using CoeffTune.Training;
using ScottPlot;

namespace CoeffTune.Cli;

/// <summary>The PNG charts the commands write.</summary>
public static class Plots
{
    /// <summary>curves.png: training and validation loss, and validation accuracy, per epoch.</summary>
    public static void Curves(IReadOnlyList<EpochMetrics> history, string path, string title)
    {
        var mp = new Multiplot();
        mp.AddPlots(2);
        mp.Layout = new ScottPlot.MultiplotLayouts.Columns();
        double[] epochs = history.Select(h => (double)h.Epoch).ToArray();
        var loss = mp.GetPlot(0);
        loss.Add.Scatter(epochs, history.Select(h => h.TrainLoss).ToArray()).LegendText = "train loss";
        loss.Add.Scatter(epochs, history.Select(h => h.Validation.Loss).ToArray()).LegendText = "validation loss";
        loss.Title(title + ": loss", 12);
        loss.XLabel("epoch");
        loss.ShowLegend();
        var acc = mp.GetPlot(1);
        acc.Add.Scatter(epochs, history.Select(h => 100 * h.Validation.Accuracy).ToArray()).LegendText = "validation accuracy (%)";
        acc.Title(title + ": accuracy", 12);
        acc.XLabel("epoch");
        acc.ShowLegend();
        mp.SavePng(path, 1000, 380);
    }
}
